/** Helpers for DNS tests: queries built and responses read with dns-packet. */
import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import type { Answer, Packet, RecordType } from 'dns-packet';

export interface QueryOptions {
  readonly id?: number;
  /** Add an OPT record with this UDP size. */
  readonly edns?: number;
  /** EDNS Client Subnet, e.g. `10.1.2.0/24`. */
  readonly subnet?: string;
  readonly ednsVersion?: number;
  readonly klass?: 'IN' | 'CH' | 'ANY';
}

export function query(name: string, type: RecordType | 'ANY', o: QueryOptions = {}): Buffer {
  const additionals: Answer[] = [];
  if (o.edns !== undefined || o.subnet !== undefined || o.ednsVersion !== undefined) {
    const options: Extract<Answer, { type: 'OPT' }>['options'] = [];
    if (o.subnet !== undefined) {
      const [ip, bits] = o.subnet.split('/');
      options.push({ code: 8, family: ip!.includes(':') ? 2 : 1, sourcePrefixLength: Number(bits), scopePrefixLength: 0, ip } as never);
    }
    additionals.push({
      name: '.',
      type: 'OPT',
      udpPayloadSize: o.edns ?? 1232,
      extendedRcode: 0,
      ednsVersion: o.ednsVersion ?? 0,
      flags: 0,
      flag_do: false,
      options,
    } as Answer);
  }
  return dnsPacket.encode({
    id: o.id ?? 0x1234,
    type: 'query',
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as RecordType, class: o.klass ?? 'IN' }],
    additionals,
  });
}

export interface Reply {
  readonly packet: Packet & { rcode?: string; flag_aa?: boolean; flag_tc?: boolean; flag_qr?: boolean };
  readonly rcode: string;
  readonly aa: boolean;
  readonly tc: boolean;
  /** Data of the answer records of `type` (or every answer). */
  data(type?: string): string[];
  readonly size: number;
}

export function read(buf: Buffer): Reply {
  const packet = dnsPacket.decode(buf) as Reply['packet'];
  const flags = buf.readUInt16BE(2);
  return {
    packet,
    rcode: packet.rcode ?? '',
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    size: buf.length,
    data(type?: string): string[] {
      return (packet.answers ?? [])
        .filter((a) => type === undefined || a.type === type)
        .map((a) => {
          const d = (a as { data?: unknown }).data;
          if (typeof d === 'string') return d;
          if (Array.isArray(d)) return d.map(String).join('');
          return JSON.stringify(d);
        });
    },
  };
}

/** One query over UDP to 127.0.0.1:port; the response, or undefined when none came within `ms`. */
export function udpQuery(port: number, msg: Buffer, ms = 1000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const done = (b: Buffer | undefined): void => {
      clearTimeout(t);
      s.close();
      resolve(b);
    };
    const t = setTimeout(() => done(undefined), ms);
    s.on('message', (m) => done(m));
    s.on('error', () => done(undefined));
    s.send(msg, port, '127.0.0.1');
  });
}
