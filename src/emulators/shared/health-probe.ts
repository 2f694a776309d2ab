/**
 * A cloud load balancer's health check of one member: a TCP connect, or an HTTP GET whose status
 * must be 2xx or 3xx, within the timeout. Real probes over the network, so a member is healthy only
 * when something on it answers.
 */
import { request } from 'node:http';
import { connect } from 'node:net';

export interface ProbeSpec {
  protocol: 'tcp' | 'http' | 'https';
  port: number;
  /** For HTTP: the path asked for. */
  path: string;
  timeoutMs: number;
  /** For HTTP: which statuses pass (default: 2xx and 3xx). */
  statusOk?: (status: number) => boolean;
}

export function probe(host: string, spec: ProbeSpec): Promise<boolean> {
  return new Promise((resolve) => {
    if (spec.protocol === 'tcp') {
      const socket = connect({ host, port: spec.port, timeout: spec.timeoutMs });
      const done = (ok: boolean) => (socket.destroy(), resolve(ok));
      socket.once('connect', () => done(true));
      socket.once('timeout', () => done(false));
      socket.once('error', () => done(false));
      return;
    }
    // https members are probed as plain HTTP: the emulator terminates no TLS.
    const req = request({ host, port: spec.port, path: spec.path, method: 'GET', timeout: spec.timeoutMs, agent: false, headers: { 'user-agent': 'emulated-load-balancer-health-check' } }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(spec.statusOk ? spec.statusOk(status) : status >= 200 && status < 400);
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => resolve(false));
    req.end();
  });
}

export interface HealthThresholds {
  healthy: number;
  unhealthy: number;
}

/** One member's standing: healthy after `healthy` passes in a row, unhealthy after `unhealthy` failures. */
export class MemberHealth {
  healthy = false;
  /** Whether either threshold was ever reached (until then a cloud reports the member as unknown). */
  decided = false;
  private passes = 0;
  private failures = 0;

  record(passed: boolean, thresholds: HealthThresholds): void {
    if (passed) {
      this.failures = 0;
      this.passes++;
      if (this.passes >= thresholds.healthy) this.healthy = this.decided = true;
    } else {
      this.passes = 0;
      this.failures++;
      if (this.failures >= thresholds.unhealthy) {
        this.healthy = false;
        this.decided = true;
      }
    }
  }
}
