/** An `etcd://HOST:PORT/PREFIX` URL: the etcd endpoint and the key prefix (ending in `/`). */
export interface EtcdLocation {
  /** `http://HOST:PORT`, as the etcd client takes it. */
  readonly endpoint: string;
  /** Every key of the location starts with this (`/PREFIX/`). */
  readonly prefix: string;
}

export function parseEtcdUrl(url: string): EtcdLocation {
  const u = new URL(url);
  if (u.protocol !== 'etcd:' || u.hostname === '') throw new Error(`expected etcd://HOST:PORT/PREFIX, got ${url}`);
  const port = u.port === '' ? '2379' : u.port;
  let path = decodeURIComponent(u.pathname);
  if (!path.startsWith('/')) path = '/' + path;
  if (!path.endsWith('/')) path += '/';
  return { endpoint: `http://${u.hostname}:${port}`, prefix: path };
}
