// Which modules a LoraConfig targets, and which rank_pattern / alpha_pattern key applies, exactly as PEFT decides.
import type { LinearModule } from '../model/spec';
import type { LoraConfig } from './config';

/**
 * A Python `re` pattern as a JS RegExp. The common syntax is the same; we translate the named-group forms
 * (`(?P<n>…)`, `(?P=n)`) and the string anchors `\A` / `\Z`. Inline flags like `(?i)` have no JS equivalent here.
 */
export function pyRegex(pattern: string, anchored: 'full' | 'none'): RegExp {
  const src = pattern
    .replace(/\(\?P</g, '(?<')
    .replace(/\(\?P=(\w+)\)/g, '\\k<$1>')
    .replace(/\\A/g, '^')
    .replace(/\\Z/g, '$');
  try {
    return new RegExp(anchored === 'full' ? `^(?:${src})$` : src, 'u');
  } catch {
    try {
      return new RegExp(anchored === 'full' ? `^(?:${src})$` : src);
    } catch (e) {
      throw new Error(`invalid regular expression "${pattern}": ${(e as Error).message}`, { cause: e });
    }
  }
}

/** Python's re.fullmatch(pattern, name). */
export function fullMatch(pattern: string, name: string): boolean {
  return pyRegex(pattern, 'full').test(name);
}

/** A list entry matches a module whose name equals it or ends with `.entry`. */
function listMatch(list: readonly string[], name: string): 'exact' | 'suffix' | null {
  if (list.includes(name)) return 'exact';
  return list.some((t) => name.endsWith(`.${t}`)) ? 'suffix' : null;
}

/**
 * PEFT's check_target_module_exists (tuners_utils.py, 0.9 – 0.17):
 * 1. exclude_modules (string: fullmatch; list: exact or `.`-suffix) wins;
 * 2. a string target_modules must fullmatch the module name;
 * 3. a list entry equal to the name targets it outright (layers_to_transform is not consulted);
 * 4. otherwise an entry must be a `.`-suffix, and then layers_to_transform filters by the layer index found with
 *    `.*\.{layers_pattern}\.(\d+)\.` (any one of the patterns), or `.*\.[^.]*\.(\d+)\.` without a pattern.
 */
export function isTargeted(c: LoraConfig, name: string): boolean {
  const ex = c.excludeModules;
  if (ex !== null && ex.length > 0) {
    if (typeof ex === 'string' ? fullMatch(ex, name) : listMatch(ex, name)) return false;
  }
  const t = c.targetModules;
  if (typeof t === 'string') return fullMatch(t, name);
  const how = listMatch(t, name);
  if (how !== 'suffix') return how === 'exact';
  const layers = c.layersToTransform;
  if (layers === null || (Array.isArray(layers) && layers.length === 0)) return true;
  const pats = c.layersPattern;
  let m: RegExpMatchArray | null = null;
  if (pats === null || pats.length === 0) {
    m = name.match(/^.*\.[^.]*\.(\d+)\./);
  } else {
    for (const p of typeof pats === 'string' ? [pats] : pats) {
      m = name.match(pyRegex(`^.*\\.${p}\\.(\\d+)\\.`, 'none'));
      if (m) break;
    }
  }
  if (!m) return false;
  const idx = Number(m[1]);
  return typeof layers === 'number' ? idx === layers : layers.includes(idx);
}

/**
 * PEFT's `all-linear`: the last name component of every linear layer except the output head, so matching then
 * follows the list rules. Our module lists never hold the head, but a module named `lm_head` is skipped anyway.
 */
export function allLinearNames(modules: readonly LinearModule[]): string[] {
  const names = new Set<string>();
  for (const m of modules) if (m.name !== 'lm_head') names.add(m.name.split('.').pop() as string);
  return [...names].sort();
}

/** The config with `all-linear` expanded as PEFT does before training (and before saving the config). */
export function resolveAllLinear(c: LoraConfig, modules: readonly LinearModule[]): LoraConfig {
  if (typeof c.targetModules === 'string' && c.targetModules.toLowerCase() === 'all-linear')
    return { ...c, targetModules: allLinearNames(modules) };
  return c;
}

/**
 * The modules a config targets, in model order. Throws, as PEFT does, when it targets none; `all-linear` is
 * expanded first.
 */
export function targetModules(c: LoraConfig, modules: readonly LinearModule[]): LinearModule[] {
  const rc = resolveAllLinear(c, modules);
  const hit = modules.filter((m) => isTargeted(rc, m.name));
  if (hit.length === 0) {
    const t =
      typeof c.targetModules === 'string' ? `"${c.targetModules}"` : `[${c.targetModules.join(', ')}]`;
    throw new Error(
      `target_modules ${t} match no linear layer of this model (e.g. ${modules[0]?.name ?? 'none'})`,
    );
  }
  return hit;
}

/**
 * PEFT's get_pattern_key (utils/other.py, ≥ 0.14; rank and alpha looked up separately): the first key, in the
 * dict's order, for which `re.match(rf"(.*\.)?({key})$", name)` succeeds; null when none does (then r /
 * lora_alpha apply). So a key matches the whole name or any `.`-separated suffix of it, and may be a regex.
 * PEFT 0.9 – 0.13 used `.*\.{key}$` instead, which differs only for a key equal to the whole module name.
 */
export function patternKey(keys: readonly string[], name: string): string | null {
  for (const key of keys) if (pyRegex(`^(?:.*\\.)?(?:${key})$`, 'none').test(name)) return key;
  return null;
}
