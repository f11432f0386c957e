/**
 * A complete configuration (SPEC §3's example, made consistent): the reference docs show it and a
 * test proves that it validates, so the example cannot drift from the schema.
 */
export const EXAMPLE_CONFIG = `admin:
  listen: 127.0.0.1:9090           # API, dashboard, /metrics
  token: \${PORTICO_ADMIN_TOKEN:-}  # required when listen is not loopback

cluster:                           # optional
  node: lb1
  store: memory                    # or redis://127.0.0.1:6379/0
  config: file                     # or etcd://127.0.0.1:2379/portico
  workers: auto                    # one per CPU core (the default), or a number

log:
  level: info
  access: { path: stdout, format: json }

shutdownGrace: 10s
stateDir: .portico

listeners:
  - name: web
    protocol: http
    listen: 0.0.0.0:8080
    limits: { headerTimeout: 10s, maxHeaderBytes: 16384, maxHeaders: 100, maxUriBytes: 8192, maxBodyBytes: 0, maxConnections: 10000 }
    trustedProxies: [10.0.0.0/8]   # whose X-Forwarded-For / Forwarded are kept
    access: { allow: [0.0.0.0/0], deny: [] }
    rateLimit: { key: source-ip, rate: 100/s, burst: 200 }
    routes:                        # first match wins; the last one may omit match
      - match: { host: images.example.com }
        pool: images
      - match: { path: /api/ }     # prefix; pathRegex for a regex
        pool: api
      - match: { header: { name: User-Agent, regex: Mobile } }
        pool: web
        headers: { request: { set: { X-Client: mobile } } }
      - match: { cookie: { name: tier, value: gold } }
        pool: web
        priority: high
      - match: { path: /old/ }
        redirect: { status: 301, location: "https://{host}/new/" }
      - pool: web

  - name: secure
    protocol: https
    listen: 0.0.0.0:8443
    tls:
      certificates:                # chosen by SNI; the first is the default
        - { cert: certs/www.pem, key: certs/www.key }
      sessionCache: shared         # local | shared (through cluster.store)
    routes: [ { pool: web } ]

  - name: mysql
    protocol: tcp
    listen: 0.0.0.0:3307
    pool: db
    inspect: tls                   # read the ClientHello without terminating

  - name: mirror
    protocol: redirect
    listen: 0.0.0.0:8081
    pool: web
    status: 302                    # 301 | 302 | 307 | 308

  - name: dns
    protocol: dns
    listen: 0.0.0.0:5353           # UDP and TCP
    zones:
      - name: example.com
        ttl: 20
        records:
          - { name: www, type: A, pool: web, policy: roundrobin, answers: 2 }
          - { name: geo, type: A, pool: web, policy: geo }
          - { name: static, type: A, values: [192.0.2.10] }

pools:
  - name: web
    balance: roundrobin            # roundrobin | leastconn | least-traffic | fastest | p2c | random | hash | lard
    persistence: { type: cookie, name: SRV, mode: insert }
    health:
      type: http                   # tcp | http | icmp | none
      path: /health
      method: GET
      expect: { status: 200-399 }
      interval: 2s
      timeout: 1s
      rise: 2
      fall: 3
    passive: { consecutiveErrors: 5, ejectFor: 30s }
    slowStart: 30s
    retries: 2                     # on another server, only where safe
    timeouts: { connect: 2s, response: 30s, idle: 60s }
    queue: { max: 1000, timeout: 5s }   # when every server is at maxConnections
    servers:
      - { name: web1, address: 127.0.0.1:9101, weight: 1 }
      - { name: web2, address: 127.0.0.1:9102, weight: 3, maxConnections: 200 }
      - { name: sorry, address: 127.0.0.1:9109, backup: true }
      - { name: web3, address: 127.0.0.1:9103, url: "http://www3.example.com", site: eu, state: drain }

  - name: api
    balance: hash
    hash: { key: header:X-User, method: maglev, boundedLoad: 1.25 }
    servers:
      - { name: api1, address: 10.0.1.1:8000 }
      - { name: api2, address: 10.0.1.2:8000 }

  - name: images
    balance: lard
    lard: { low: 25, high: 65, replicate: true, shrinkAfter: 20s }
    discovery: { type: dns-srv, name: _http._tcp.images.example.com, refresh: 30s }

  - name: db
    balance: leastconn
    persistence: { type: tls-session, ttl: 5m }
    health: { type: tcp, interval: 5s }
    servers:
      - { name: db1, address: "[2001:db8::10]:3306" }
      - { name: db2, address: db2.internal:3306, backup: true }
`;
