// Training setup: base model, dataset, LoRA and optimizer hyperparameters, and the Start button.
import { useId } from 'react';
import { useEngine } from '../engine-context';
import { useStudio } from '../store';
import { SCHEDULERS, TARGET_MODULES } from '../store/settings';
import type { SchedulerName } from '../../worker/protocol';
import { formatBytes, formatCompact } from '../format';
import { DropZone } from './DropZone';
import { RunControls } from './RunControls';
import { SavedRuns } from './SavedRuns';
import { NumberField, SliderField } from './fields';

function ModelPicker() {
  const engine = useEngine();
  const id = useId();
  const repo = useStudio((s) => s.settings.modelRepo);
  const files = useStudio((s) => s.modelFiles);
  const loading = useStudio((s) => s.engine.loading);
  const model = useStudio((s) => s.engine.model);
  const change = useStudio((s) => s.settingChanged);
  const dropped = useStudio((s) => s.modelFilesDropped);
  return (
    <fieldset className="group">
      <legend>Base model</legend>
      <div className="field">
        <label className="field-label" htmlFor={id}>
          Hugging Face Hub id
        </label>
        <div className="inline">
          <input
            id={id}
            type="text"
            placeholder="HuggingFaceTB/SmolLM2-135M-Instruct"
            spellCheck={false}
            autoComplete="off"
            value={repo}
            onChange={(ev) => change('modelRepo', ev.currentTarget.value.trim())}
          />
          <button
            type="button"
            className="btn"
            disabled={loading || (!repo && files.length === 0)}
            onClick={() =>
              engine.loadModel(files.length > 0 ? { kind: 'files', files } : { kind: 'hub', repo })
            }
          >
            {loading ? 'Loading…' : 'Load'}
          </button>
        </div>
      </div>
      <DropZone
        label="…or drop a model folder"
        hint="config.json, tokenizer.json and *.safetensors"
        files={files}
        onFiles={dropped}
        directory
        testId="model-drop"
      />
      {model && <ModelSummary />}
    </fieldset>
  );
}

function ModelSummary() {
  const model = useStudio((s) => s.engine.model);
  const line = useStudio((s) => s.engine.trainableLine);
  if (!model) return null;
  return (
    <div data-testid="model-summary">
      <p className="ok small">
        Loaded {model.name} ({model.architecture}, {formatCompact(model.parameters)} parameters
        {model.layers ? `, ${model.layers} layers` : ''}
        {model.weightsDtype ? `, ${model.weightsDtype} weights` : ''}
        {model.gpuBytes ? `, ${formatBytes(model.gpuBytes)} on the GPU` : ''})
      </p>
      {line && (
        <p className="small mono" data-testid="trainable-line">
          {line}
        </p>
      )}
    </div>
  );
}

function DatasetReport() {
  const d = useStudio((s) => s.engine.dataset);
  if (!d) return null;
  return (
    <div className="small" data-testid="dataset-report">
      <p className="ok">
        {d.file}: {d.format} format, {d.rowsUsed} of {d.rowsRead} rows used → {d.trainExamples} train /{' '}
        {d.evalExamples} eval examples, {formatCompact(d.trainedTokens)} trained tokens (max length{' '}
        {d.maxLength})
      </p>
      {(d.skipped > 0 || d.truncated > 0 || d.duplicates > 0) && (
        <p className="muted">
          {d.skipped > 0 && `${d.skipped} rows skipped. `}
          {d.truncated > 0 && `${d.truncated} rows cut to the max length. `}
          {d.duplicates > 0 && `${d.duplicates} duplicate rows.`}
        </p>
      )}
      {d.skippedExamples.length > 0 && (
        <ul className="muted">
          {d.skippedExamples.map((x) => (
            <li key={x}>{x}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

function LoraControls() {
  const targets = useStudio((s) => s.settings.target_modules);
  const toggle = useStudio((s) => s.targetModuleToggled);
  return (
    <fieldset className="group">
      <legend>LoRA</legend>
      <div className="grid-2">
        <SliderField name="r" label="Rank r" hint="Adapter size: higher learns more, costs more" />
        <SliderField name="lora_alpha" label="Alpha" hint="Scaling is alpha / r" />
        <SliderField
          name="lora_dropout"
          label="Dropout"
          hint="On the adapter input"
          format={(v) => v.toFixed(2)}
        />
      </div>
      <div className="field">
        <span className="field-label" id="targets-label">
          Target modules
        </span>
        <div className="checks" role="group" aria-labelledby="targets-label">
          {TARGET_MODULES.map((m) => (
            <label key={m} className="check">
              <input
                type="checkbox"
                checked={targets.includes(m)}
                onChange={(ev) => toggle(m, ev.currentTarget.checked)}
              />
              <code>{m}</code>
            </label>
          ))}
        </div>
      </div>
    </fieldset>
  );
}

function OptimizerControls() {
  const id = useId();
  const scheduler = useStudio((s) => s.settings.lr_scheduler_type);
  const change = useStudio((s) => s.settingChanged);
  return (
    <fieldset className="group">
      <legend>Optimization</legend>
      <div className="grid-3">
        <NumberField name="learning_rate" label="Learning rate" hint="AdamW, e.g. 2e-4" />
        <NumberField name="num_train_epochs" label="Epochs" />
        <NumberField name="per_device_train_batch_size" label="Batch size" />
        <NumberField name="gradient_accumulation_steps" label="Grad accumulation" />
        <div className="field">
          <label className="field-label" htmlFor={id}>
            Scheduler
          </label>
          <select
            id={id}
            value={scheduler}
            onChange={(ev) => {
              const v = SCHEDULERS.find((s) => s.value === ev.currentTarget.value);
              if (v) change('lr_scheduler_type', v.value satisfies SchedulerName);
            }}
          >
            {SCHEDULERS.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </div>
        <NumberField name="warmup_steps" label="Warmup steps" />
        <NumberField name="max_length" label="Max length" hint="Tokens per example" />
        <NumberField name="max_steps" label="Max steps" hint="0: train all epochs" />
        <NumberField name="eval_split" label="Eval split" hint="Held out for Evaluate" />
      </div>
    </fieldset>
  );
}

export function TrainingPanel() {
  const datasetFiles = useStudio((s) => s.datasetFiles);
  const datasetDropped = useStudio((s) => s.datasetFilesDropped);
  return (
    <section className="panel" aria-labelledby="training-h">
      <h2 id="training-h">Training</h2>
      <ModelPicker />
      <fieldset className="group">
        <legend>Dataset</legend>
        <DropZone
          label="Training data"
          hint="JSONL, JSON, CSV, Parquet or plain text"
          files={datasetFiles}
          onFiles={datasetDropped}
          accept=".jsonl,.json,.csv,.parquet,.txt"
          testId="dataset-drop"
        />
        <DatasetReport />
      </fieldset>
      <LoraControls />
      <OptimizerControls />
      <RunControls />
      <SavedRuns />
    </section>
  );
}
