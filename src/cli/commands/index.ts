// The registry of CLI commands, loaded on demand so that `--help` stays fast.
import type { Command } from '../command';

export const COMMANDS: Record<string, () => Promise<Command>> = {
  'gpu-info': async () => (await import('./gpu-info')).gpuInfo,
  data: async () => (await import('./data')).data,
  info: async () => (await import('./info')).info,
  eval: async () => (await import('./eval')).evalCommand,
  train: async () => (await import('./train')).train,
  merge: async () => (await import('./merge')).merge,
  adapters: async () => (await import('./adapters')).adapters,
};
