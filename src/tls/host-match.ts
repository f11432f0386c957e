/**
 * Server-name patterns as routes write them: an exact name, or `*.example.com` for every
 * subdomain of example.com (at any depth, as the `host` match of http routes). Names and
 * patterns are compared in lower case, without a trailing dot.
 */
export function hostMatcher(patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const p of patterns) {
    const l = p.toLowerCase().replace(/\.$/, '');
    if (l.startsWith('*.')) suffixes.push(l.slice(1));
    else exact.add(l);
  }
  if (suffixes.length === 0) return (name) => exact.has(name);
  return (name) => {
    if (exact.has(name)) return true;
    for (let i = 0; i < suffixes.length; i++) {
      const s = suffixes[i]!;
      if (name.length > s.length && name.endsWith(s)) return true;
    }
    return false;
  };
}
