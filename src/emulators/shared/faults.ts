/**
 * Faults a test switches on, each for a number of occurrences (or until cleared): answers the
 * API gives instead of the real one, actions that fail or drag, droplets that never get an
 * address, SSH connections that drop while a script runs. Programmatic (`emulator.faults`) or
 * over HTTP (`POST /_emulator/faults` with the same JSON).
 */

export interface HttpFault {
  /** 429 (with retry-after), 500 or 503. */
  status: 429 | 500 | 503;
  /** How many requests get it (default 1). */
  count?: number;
  /** Only requests whose `METHOD /path` contains this (e.g. `POST /v2/droplets`). */
  match?: string;
  /** For 429: the retry-after seconds (default 1). */
  retryAfter?: number;
}

export interface ActionFault {
  /** Action type: create, shutdown, power_off, power_on, snapshot, transfer. */
  type: string;
  /** `errored`: the action ends errored (nothing happens); `slow`: it takes `extraMs` longer. */
  outcome: 'errored' | 'slow';
  extraMs?: number;
  count?: number;
}

export interface SshDropFault {
  /** Drop a droplet's SSH sessions this long after the first one opens. */
  afterMs: number;
  /** How many droplets (created from now on) get it (default 1). */
  count?: number;
}

export interface FaultSettings {
  http?: HttpFault[];
  actions?: ActionFault[];
  /** The next N droplets created never get an IP address (they do become active). */
  noAddress?: number;
  sshDrop?: SshDropFault;
}

const INFINITE = Number.POSITIVE_INFINITY;

export class Faults {
  private http: (HttpFault & { count: number })[] = [];
  private actions: (ActionFault & { count: number })[] = [];
  private noAddressLeft = 0;
  private sshDrop?: SshDropFault & { count: number };
  /** How many times each kind fired, for tests to check that a fault was met. */
  readonly fired = { http: 0, actions: 0, noAddress: 0, sshDrop: 0 };

  /** Adds faults (each list appends; counts default to 1, -1 means until cleared). */
  set(settings: FaultSettings): void {
    const count = (n: number | undefined) => (n === undefined ? 1 : n < 0 ? INFINITE : n);
    for (const f of settings.http ?? []) this.http.push({ ...f, count: count(f.count) });
    for (const f of settings.actions ?? []) this.actions.push({ ...f, count: count(f.count) });
    if (settings.noAddress !== undefined) this.noAddressLeft = count(settings.noAddress);
    if (settings.sshDrop) this.sshDrop = { ...settings.sshDrop, count: count(settings.sshDrop.count) };
  }

  clear(): void {
    this.http = [];
    this.actions = [];
    this.noAddressLeft = 0;
    this.sshDrop = undefined;
  }

  /** The fault this request meets, if any (consumed). */
  takeHttp(route: string): HttpFault | undefined {
    const list = this.http;
    const i = list.findIndex((f) => f.count > 0 && (!f.match || route.includes(f.match)));
    if (i < 0) return undefined;
    const fault = list[i]!;
    fault.count--;
    if (fault.count <= 0) list.splice(i, 1);
    this.fired.http++;
    return fault;
  }

  takeAction(type: string): ActionFault | undefined {
    const i = this.actions.findIndex((f) => f.type === type && f.count > 0);
    if (i < 0) return undefined;
    const fault = this.actions[i]!;
    fault.count--;
    if (fault.count <= 0) this.actions.splice(i, 1);
    this.fired.actions++;
    return fault;
  }

  takeNoAddress(): boolean {
    if (this.noAddressLeft <= 0) return false;
    this.noAddressLeft--;
    this.fired.noAddress++;
    return true;
  }

  takeSshDrop(): number | undefined {
    if (!this.sshDrop || this.sshDrop.count <= 0) return undefined;
    this.sshDrop.count--;
    const after = this.sshDrop.afterMs;
    if (this.sshDrop.count <= 0) this.sshDrop = undefined;
    return after;
  }
}
