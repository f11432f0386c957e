import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { AdminError } from '../admin-error.js';
import type { AdminHandler } from '../router.js';

/** The dashboard's own files (static HTML, JS and CSS shipped in the package). */
const PUBLIC_DIR = fileURLToPath(new URL('../../../src/admin/dashboard/public/', import.meta.url));

interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly etag: string;
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};

/** The files served under /dashboard/ and where each is read from. */
function sources(): Record<string, string> {
  const require = createRequire(import.meta.url);
  return {
    'index.html': PUBLIC_DIR + 'index.html',
    'dashboard.js': PUBLIC_DIR + 'dashboard.js',
    'loadbalancers.js': PUBLIC_DIR + 'loadbalancers.js',
    'dashboard.css': PUBLIC_DIR + 'dashboard.css',
    'uplot.js': require.resolve('uplot/dist/uPlot.iife.min.js'),
    'uplot.css': require.resolve('uplot/dist/uPlot.min.css'),
  };
}

/**
 * The dashboard's files, read once on first use and kept in memory. The page is one HTML
 * file, one script and one stylesheet, plus uPlot (resolved from its npm package).
 */
export class DashboardAssets {
  private assets: Map<string, Asset> | undefined;

  get(name: string): Asset | undefined {
    if (this.assets === undefined) {
      const out = new Map<string, Asset>();
      for (const [n, path] of Object.entries(sources())) {
        const body = readFileSync(path);
        const ext = n.slice(n.lastIndexOf('.') + 1);
        out.set(n, { type: TYPES[ext] ?? 'application/octet-stream', body, etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"` });
      }
      this.assets = out;
    }
    return this.assets.get(name);
  }
}

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** `GET /` and `GET /dashboard/{file}`. */
export function staticRoute(assets: DashboardAssets, fixed?: string): AdminHandler {
  return (req, res, ctx) => {
    const name = fixed ?? ctx.params.file ?? '';
    const a = assets.get(name);
    if (a === undefined) throw new AdminError(404, 'LB_ADMIN_NOT_FOUND', `no dashboard file ${name}`);
    const headers: Record<string, string | number> = {
      'content-type': a.type,
      'cache-control': 'no-cache',
      etag: a.etag,
      'x-content-type-options': 'nosniff',
    };
    if (a.type.startsWith('text/html')) {
      headers['content-security-policy'] = CSP;
      headers['referrer-policy'] = 'no-referrer';
    }
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, headers);
      res.end();
      return undefined;
    }
    headers['content-length'] = a.body.length;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : a.body);
    return undefined;
  };
}
