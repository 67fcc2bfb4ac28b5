// Labelled form controls bound to one training setting each.
import { useId } from 'react';
import type { ReactNode } from 'react';
import { useStudio } from '../store';
import { BOUNDS } from '../store/settings';

type Bounded = keyof typeof BOUNDS;

interface FieldProps {
  name: Bounded;
  label: string;
  hint?: string;
  format?: (v: number) => string;
}

function Field({
  id,
  label,
  hint,
  children,
}: {
  id: string;
  label: string;
  hint?: string;
  children: ReactNode;
}) {
  return (
    <div className="field">
      <label className="field-label" htmlFor={id}>
        {label}
      </label>
      {children}
      {hint && (
        <span className="muted small" id={`${id}-hint`}>
          {hint}
        </span>
      )}
    </div>
  );
}

/** A range slider with its value shown beside it. */
export function SliderField({ name, label, hint, format = String }: FieldProps) {
  const id = useId();
  const value = useStudio((s) => s.settings[name]);
  const change = useStudio((s) => s.settingChanged);
  const b = BOUNDS[name];
  return (
    <Field id={id} label={label} hint={hint}>
      <div className="slider">
        <input
          id={id}
          type="range"
          min={b.min}
          max={b.max}
          step={b.step}
          value={value}
          aria-describedby={hint ? `${id}-hint` : undefined}
          aria-valuetext={format(value)}
          onChange={(ev) => change(name, Number(ev.currentTarget.value))}
        />
        <output htmlFor={id}>{format(value)}</output>
      </div>
    </Field>
  );
}

/** A number input; out-of-range values are clamped by the store when committed. */
export function NumberField({ name, label, hint }: FieldProps) {
  const id = useId();
  const value = useStudio((s) => s.settings[name]);
  const change = useStudio((s) => s.settingChanged);
  const b = BOUNDS[name];
  return (
    <Field id={id} label={label} hint={hint}>
      <input
        id={id}
        type="number"
        inputMode="decimal"
        min={b.min}
        max={b.max}
        step={b.step < 1 ? 'any' : b.step}
        // `key` re-mounts the input when the store value changes elsewhere (reset, clamping).
        key={value}
        defaultValue={value}
        aria-describedby={hint ? `${id}-hint` : undefined}
        onBlur={(ev) => {
          const v = Number(ev.currentTarget.value);
          if (ev.currentTarget.value.trim() !== '' && v !== value) change(name, v);
          else ev.currentTarget.value = String(value);
        }}
        onKeyDown={(ev) => {
          if (ev.key === 'Enter') ev.currentTarget.blur();
        }}
      />
    </Field>
  );
}
