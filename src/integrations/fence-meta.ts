/**
 * The meta string of a lesson's code fence, shared by the build (code block headers) and the
 * snippet tool (scripts/lib/snippets.ts): ```python source="path#region" title="…" or
 * norun="<why it is not runnable>".
 */

/** A parsed `source="path#region"` reference. */
export interface SourceRef {
  path: string;
  region?: string;
}

const META_PAIR = /([A-Za-z_][\w-]*)=(?:"([^"]*)"|'([^']*)')/g;

/** Parse the `key="value"` pairs of a code fence's meta string. */
export function parseFenceMeta(meta: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const match of meta.matchAll(META_PAIR)) {
    attrs[match[1]] = match[2] ?? match[3] ?? '';
  }
  return attrs;
}

/** Parse a `source` attribute value: `path` or `path#region`. */
export function parseSourceRef(value: string): SourceRef {
  const hash = value.indexOf('#');
  if (hash === -1) return { path: value.trim() };
  const region = value.slice(hash + 1).trim();
  return { path: value.slice(0, hash).trim(), region: region === '' ? undefined : region };
}
