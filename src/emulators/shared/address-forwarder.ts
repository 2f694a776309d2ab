/**
 * An emulated cloud's movable public address (a Hetzner Floating IP, a DigitalOcean reserved IP,
 * an Elastic IP), as traffic sees it: a
 * loopback address of its own with a listener on each of a few ports (a real one takes every port),
 * forwarding each new connection to the same port of whatever machine `holder()` names at that
 * moment. Moving the address moves new connections; open ones run to their end.
 */
import { claimAddress, releaseAddress } from '../machines/addresses.js';
import { TcpForwarder } from './tcp-forwarder.js';

/** Ports such an address forwards when the emulator is not told otherwise (the usual web ports). */
export const DEFAULT_ADDRESS_PORTS = [80, 443, 8080];

export class AddressForwarder {
  private constructor(
    readonly address: string,
    private readonly listeners: TcpForwarder[],
  ) {}

  /**
   * Claims a free loopback address and listens on every port of `ports`; `holder` is asked per
   * connection. A port in `optional` that cannot be opened is left out (the SSH port, which a host
   * sshd may hold on every address); any other such port fails the whole call.
   */
  static async open(ports: number[], holder: () => string | undefined, optional: number[] = []): Promise<AddressForwarder> {
    const address = await claimAddress(ports);
    const listeners: TcpForwarder[] = [];
    try {
      for (const port of ports) {
        const pick = () => {
          const host = holder();
          return host ? { host, port } : undefined;
        };
        try {
          listeners.push(await TcpForwarder.listen(address, port, { pick }));
        } catch (err) {
          if (!optional.includes(port)) throw err;
        }
      }
    } catch (err) {
      for (const l of listeners) await l.close();
      await releaseAddress(address);
      throw err;
    }
    return new AddressForwarder(address, listeners);
  }

  /** Stops listening, ends open connections and gives the address back. */
  async close(): Promise<void> {
    for (const l of this.listeners) await l.close();
    await releaseAddress(this.address);
  }
}
