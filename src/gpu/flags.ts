// Debug switches, read once from the environment (Node) or localStorage (browser): LORA_STUDIO_DEBUG=validate,shaders.

export interface DebugFlags {
  /** Wrap every dispatch in a validation error scope and throw at the dispatch that failed. */
  validate: boolean;
  /** Print each WGSL module when its pipeline is first built. */
  shaders: boolean;
}

function readSetting(): string {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> }; localStorage?: Storage };
  try {
    return g.process?.env?.LORA_STUDIO_DEBUG ?? g.localStorage?.getItem('LORA_STUDIO_DEBUG') ?? '';
  } catch {
    return '';
  }
}

export function debugFlags(setting = readSetting()): DebugFlags {
  const on = new Set(setting.split(',').map((s) => s.trim()));
  return { validate: on.has('validate'), shaders: on.has('shaders') };
}
