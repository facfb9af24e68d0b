/**
 * JSON.parse for Hugging Face files written by Python's json module, which emits
 * the bare tokens Infinity, -Infinity and NaN for non-finite floats (real
 * NemotronH configs contain "time_step_limit": [0.0, Infinity]). The tokens are
 * replaced outside string literals only, then restored by a reviver.
 */
const SENTINEL = '__nemotron_nonfinite__:';

export function parseHfJson(text: string): unknown {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      // copy a string literal verbatim, honouring escapes
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const rest = text.startsWith('-Infinity', i) ? '-Infinity' : text.startsWith('Infinity', i) ? 'Infinity' : text.startsWith('NaN', i) ? 'NaN' : null;
    if (rest) {
      out += `"${SENTINEL}${rest}"`;
      i += rest.length;
      continue;
    }
    out += c;
    i++;
  }
  return JSON.parse(out, (_key, value) => {
    if (typeof value === 'string' && value.startsWith(SENTINEL)) {
      const t = value.slice(SENTINEL.length);
      return t === 'Infinity' ? Infinity : t === '-Infinity' ? -Infinity : NaN;
    }
    return value;
  });
}
