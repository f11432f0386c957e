import { fail, ok, type Parsed } from './values/parsed.js';

export type Env = Readonly<Record<string, string | undefined>>;

const REF = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{/g;

/**
 * Replace `${VAR}` and `${VAR:-default}` (the default when VAR is unset or empty) in a string;
 * `$${` stands for a literal `${`. An unset VAR without a default is an error that names it.
 */
export function expandEnv(text: string, env: Env): Parsed<string> {
  if (!text.includes('${')) return ok(text);
  const missing: string[] = [];
  let malformed = false;
  const out = text.replace(REF, (whole, name: string | undefined, dflt: string | undefined) => {
    if (whole === '$${') return '${';
    if (name === undefined) {
      malformed = true;
      return whole;
    }
    const v = env[name];
    if (v !== undefined && (v !== '' || dflt === undefined)) return v;
    if (dflt !== undefined) return dflt;
    missing.push(name);
    return '';
  });
  if (missing.length > 0) {
    const names = [...new Set(missing)];
    return fail(
      `environment variable${names.length > 1 ? 's' : ''} ${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} not set ` +
        `(write \${${names[0]}:-DEFAULT} to give a default)`,
    );
  }
  if (malformed) return fail('bad ${...}: write ${NAME} or ${NAME:-default} (NAME is letters, digits and _), or $${ for a literal ${');
  return ok(out);
}
