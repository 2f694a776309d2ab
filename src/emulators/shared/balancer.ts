/**
 * An emulated cloud load balancer's traffic part (the Hetzner and DigitalOcean emulators'), for an
 * API that describes a balancer as services (a listen port forwarded to a destination port, each
 * with its own health check) over a set of members: one TCP listener per service on the balancer's
 * loopback address, forwarding
 * each new connection round robin to the members that service's check found healthy. Checks are
 * real probes, one round each interval, for as long as the service exists. Taking a member out (or
 * it failing its check) stops new connections to it; open ones run to their end.
 */
import type { BackgroundWork } from './background.js';
import { MemberHealth, probe, type ProbeSpec } from './health-probe.js';
import { refuseHttp, TcpForwarder } from './tcp-forwarder.js';

export interface ServiceCheck extends ProbeSpec {
  intervalMs: number;
  /** Passes in a row before a member takes connections, failures in a row before it stops. */
  healthy: number;
  unhealthy: number;
}

export interface BalancedService {
  listenPort: number;
  destinationPort: number;
  /** An HTTP service answers 503 when no member is healthy; a TCP one closes the connection. */
  http: boolean;
  check: ServiceCheck;
  /**
   * Services of one group share one check and their members' standing (a DigitalOcean load balancer
   * has one health check for all its rules); default: each service its own.
   */
  group?: string;
}

export interface BalancedMember {
  /** The member's id in the emulator's words. */
  id: number;
  /** Its address; none (or not `up`): it fails every check. */
  host?: string;
  up: boolean;
}

export type MemberStatus = 'healthy' | 'unhealthy' | 'unknown';

const groupOf = (s: BalancedService) => s.group ?? String(s.listenPort);

export class Balancer {
  private readonly listeners = new Map<number, TcpForwarder>();
  /** Per check group (a service's listen port unless it names a group), per member id. */
  private readonly health = new Map<string, Map<number, MemberHealth>>();
  private next = 0;
  private stopped = false;

  private constructor(
    readonly address: string,
    private services: BalancedService[],
    private readonly members: () => BalancedMember[],
    private readonly work: BackgroundWork,
  ) {}

  /** Listens on `address` for each service; a port that cannot be opened fails the whole call. */
  static async open(address: string, services: BalancedService[], members: () => BalancedMember[], work: BackgroundWork): Promise<Balancer> {
    const balancer = new Balancer(address, [], members, work);
    await balancer.setServices(services);
    return balancer;
  }

  /**
   * Makes `services` the balancer's: listeners of ports no longer served close, new ones open. A
   * service that stays keeps its members' standing, judged by its new check from the next round on
   * (a changed check takes no member out at once). On failure the services before stay.
   */
  async setServices(services: BalancedService[]): Promise<void> {
    const opened: number[] = [];
    try {
      for (const s of services) {
        if (this.listeners.has(s.listenPort)) continue;
        this.listeners.set(s.listenPort, await TcpForwarder.listen(this.address, s.listenPort, { pick: () => this.pick(s.listenPort), refuse: s.http ? refuseHttp : undefined }));
        opened.push(s.listenPort);
      }
    } catch (err) {
      for (const port of opened) await this.closeListener(port);
      throw err;
    }
    this.services = services.map((s) => ({ ...s }));
    for (const port of [...this.listeners.keys()]) if (!services.some((s) => s.listenPort === port)) await this.closeListener(port);
    for (const group of [...this.health.keys()]) if (!services.some((s) => groupOf(s) === group)) this.health.delete(group);
    for (const s of services) {
      if (this.health.has(groupOf(s))) continue;
      this.health.set(groupOf(s), new Map());
      this.work.track(() => this.checkLoop(groupOf(s)));
    }
  }

  /** A member's standing on one service (unknown until its check decided, or if not a member). */
  status(listenPort: number, memberId: number): MemberStatus {
    const service = this.services.find((s) => s.listenPort === listenPort);
    const h = service && this.health.get(groupOf(service))?.get(memberId);
    return !h?.decided ? 'unknown' : h.healthy ? 'healthy' : 'unhealthy';
  }

  /** A member taken out starts over as unknown if it joins again. */
  forget(memberId: number): void {
    for (const health of this.health.values()) health.delete(memberId);
  }

  /** Open connections through the service to a target (for tests of draining). */
  openTo(listenPort: number, host: string, port: number): number {
    return this.listeners.get(listenPort)?.openTo({ host, port }) ?? 0;
  }

  private pick(listenPort: number) {
    const service = this.services.find((s) => s.listenPort === listenPort);
    const health = service && this.health.get(groupOf(service));
    if (!service || !health) return undefined;
    const healthy = this.members().filter((m) => m.host && m.up && health.get(m.id)?.healthy);
    if (healthy.length === 0) return undefined;
    return { host: healthy[this.next++ % healthy.length]!.host!, port: service.destinationPort };
  }

  /** One check group's checks, each round with its check as it is then, until the group goes or the balancer closes. */
  private async checkLoop(group: string): Promise<void> {
    const health = this.health.get(group)!;
    while (!this.stopped && !this.work.closed && this.health.get(group) === health) {
      const check = this.services.find((s) => groupOf(s) === group)!.check;
      const members = this.members();
      const ids = new Set(members.map((m) => m.id));
      for (const id of health.keys()) if (!ids.has(id)) health.delete(id);
      await Promise.all(
        members.map(async (m) => {
          const passed = m.host && m.up ? await probe(m.host, check) : false;
          // A member taken out while its probe ran is not judged.
          if (!this.members().some((x) => x.id === m.id)) return;
          let h = health.get(m.id);
          if (!h) health.set(m.id, (h = new MemberHealth()));
          h.record(passed, { healthy: check.healthy, unhealthy: check.unhealthy });
        }),
      );
      await this.work.sleep(check.intervalMs);
    }
  }

  private async closeListener(port: number): Promise<void> {
    const listener = this.listeners.get(port);
    this.listeners.delete(port);
    await listener?.close();
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.health.clear();
    for (const port of [...this.listeners.keys()]) await this.closeListener(port);
  }
}
