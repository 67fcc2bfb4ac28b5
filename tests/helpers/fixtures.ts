// The shared fixtures (../shared/fixtures): tests that need them skip, saying why, where they are absent.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));
export const hasFixtures = existsSync(`${FIXTURES}README.md`);
export const NO_FIXTURES = `skipped: ../shared/fixtures is absent (it sits beside the checkout in CI)`;

if (!hasFixtures) console.warn(NO_FIXTURES);

export function fixture(path: string): string {
  return `${FIXTURES}${path}`;
}
