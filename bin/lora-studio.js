#!/usr/bin/env node
// The `lora-studio` command: runs the TypeScript CLI through tsx, so Node needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
