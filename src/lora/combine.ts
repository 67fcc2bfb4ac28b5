// Several adapters on one base: a named set with one active, and their exact weighted sum (PEFT's "cat").
import type { Adapter, LoraConfig, LoraTensors } from './config';
import { rankFor, scalingFor } from './config';

/**
 * Σᵢ wᵢ·sᵢ·Bᵢ·Aᵢ as one adapter, exactly, as PEFT's add_weighted_adapter(combination_type="cat"):
 * A = [w₁s₁A₁; w₂s₂A₂; …] (rows stacked), B = [B₁ B₂ …] (columns side by side), lora_alpha = r, so scaling = 1.
 * A module that adapter i lacks gets rᵢ zero rows/columns there, as PEFT's zero-padded slices, so every module
 * has rank Σ rᵢ when no input uses rank_pattern. Where ranks still differ (rank_pattern inputs), the new config
 * carries rank_pattern and alpha_pattern entries (key = the escaped full module name) with alpha = rank.
 * rsLoRA is off in the result: PEFT keeps the first adapter's flag, which would break scaling = 1.
 */
export function combineAdapters(adapters: readonly Adapter[], weights: readonly number[]): Adapter {
  if (adapters.length === 0) throw new Error('combine: no adapters given');
  if (weights.length !== adapters.length)
    throw new Error(`combine: ${adapters.length} adapters but ${weights.length} weights`);
  for (const w of weights)
    if (!Number.isFinite(w)) throw new Error(`combine: weight ${w} is not a finite number`);
  const names: string[] = [];
  const shape = new Map<string, { in: number; out: number }>();
  adapters.forEach((a, i) => {
    for (const [name, t] of a.tensors) {
      const s = shape.get(name);
      if (!s) {
        names.push(name);
        shape.set(name, { in: t.in, out: t.out });
      } else if (s.in !== t.in || s.out !== t.out) {
        throw new Error(
          `combine: module ${name} is ${s.out}x${s.in} in one adapter and ${t.out}x${t.in} in adapter ${i + 1}`,
        );
      }
    }
  });
  const tensors = new Map<string, LoraTensors>();
  for (const name of names) {
    const { in: I, out: O } = shape.get(name) as { in: number; out: number };
    const blocks = adapters.map((a) => {
      const t = a.tensors.get(name);
      return { t, r: t ? t.r : rankFor(a.config, name), factor: 0 };
    });
    blocks.forEach((b, i) => {
      if (b.t) b.factor = weights[i] * scalingFor(adapters[i].config, name);
    });
    const R = blocks.reduce((s, b) => s + b.r, 0);
    const A = new Float32Array(R * I);
    const B = new Float32Array(O * R);
    let k0 = 0;
    for (const b of blocks) {
      if (b.t) {
        const { t, factor } = b;
        for (let k = 0; k < b.r; k++)
          for (let i = 0; i < I; i++) A[(k0 + k) * I + i] = factor * t.A[k * I + i];
        for (let o = 0; o < O; o++) for (let k = 0; k < b.r; k++) B[o * R + k0 + k] = t.B[o * b.r + k];
      }
      k0 += b.r;
    }
    tensors.set(name, { A, B, r: R, in: I, out: O });
  }
  return { config: combinedConfig(adapters, tensors), tensors };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function sameTargeting(a: LoraConfig, b: LoraConfig): boolean {
  const pick = (c: LoraConfig) =>
    JSON.stringify([
      typeof c.targetModules === 'string' ? c.targetModules : [...c.targetModules].sort(),
      c.excludeModules,
      c.layersToTransform,
      c.layersPattern,
    ]);
  return pick(a) === pick(b);
}

function combinedConfig(adapters: readonly Adapter[], tensors: Map<string, LoraTensors>): LoraConfig {
  const first = adapters[0].config;
  // The most common rank becomes r; the others go to rank_pattern (empty in the usual case).
  const counts = new Map<number, number>();
  for (const t of tensors.values()) counts.set(t.r, (counts.get(t.r) ?? 0) + 1);
  const r = [...counts.entries()].sort((x, y) => y[1] - x[1] || y[0] - x[0])[0][0];
  const rankPattern: Record<string, number> = {};
  for (const [name, t] of tensors) if (t.r !== r) rankPattern[escapeRegex(name)] = t.r;
  const base: LoraConfig = {
    ...first,
    r,
    loraAlpha: r,
    rankPattern,
    alphaPattern: { ...rankPattern },
    useRslora: false,
  };
  if (adapters.every((a) => sameTargeting(a.config, first))) return base;
  const kinds = new Set(adapters.map((a) => typeof a.config.targetModules));
  const plain = adapters.every(
    (a) => a.config.excludeModules === null && a.config.layersToTransform === null,
  );
  if (kinds.size === 1 && plain) {
    // PEFT: strings join as "(t1)|(t2)", lists take their union.
    const targetModules =
      typeof first.targetModules === 'string'
        ? adapters.map((a) => `(${a.config.targetModules as string})`).join('|')
        : [...new Set(adapters.flatMap((a) => a.config.targetModules as string[]))].sort();
    return { ...base, targetModules };
  }
  // Mixed targeting rules: name every module outright (exact names always match, whatever the PEFT version).
  return {
    ...base,
    targetModules: [...tensors.keys()],
    excludeModules: null,
    layersToTransform: null,
    layersPattern: null,
  };
}

/** Adapters loaded on one base model, one of them active (or none: the base alone). */
export class AdapterSet {
  private readonly adapters = new Map<string, Adapter>();
  private activeName: string | null = null;

  get names(): string[] {
    return [...this.adapters.keys()];
  }

  get active(): string | null {
    return this.activeName;
  }

  get(name: string): Adapter {
    const a = this.adapters.get(name);
    if (!a) throw new Error(`no adapter named "${name}" (loaded: ${this.names.join(', ') || 'none'})`);
    return a;
  }

  /** Adds an adapter; the first one added becomes active. */
  add(name: string, adapter: Adapter): void {
    if (this.adapters.has(name)) throw new Error(`an adapter named "${name}" is already loaded`);
    this.adapters.set(name, adapter);
    this.activeName ??= name;
  }

  remove(name: string): void {
    this.get(name);
    this.adapters.delete(name);
    if (this.activeName === name) this.activeName = this.names[0] ?? null;
  }

  /** Makes `name` active; null disables adapters (base model only). */
  setActive(name: string | null): void {
    if (name !== null) this.get(name);
    this.activeName = name;
  }

  activeAdapter(): Adapter | null {
    return this.activeName === null ? null : this.get(this.activeName);
  }

  /** Adds the weighted sum of `names` as a new adapter `as` and returns it. */
  combine(names: readonly string[], weights: readonly number[], as: string): Adapter {
    const combined = combineAdapters(
      names.map((n) => this.get(n)),
      weights,
    );
    this.add(as, combined);
    return combined;
  }
}
