/**
 * Kit: the opaque machine handle. A provider that must remember something about a machine it
 * launched (a temporary key, a temporary security group) keeps it in a handle instead of in the
 * machine's labels, which are what the cloud stores and everyone reads:
 *
 *   const handles = machineHandles<{ keyId?: number }>();
 *   return { ...machine, handle: handles.make({ keyId }) };
 *   const state = handles.read(machine);   // undefined for a machine found by listServers
 *
 * The state lives in a WeakMap of the provider's own: the handle is an empty frozen object, so
 * nothing else can read it, print it or serialise it, and another provider's handle reads as none.
 */
import type { Machine, MachineHandle } from '../types.js';

export interface MachineHandles<T> {
  make(state: T): MachineHandle;
  read(machine: Pick<Machine, 'handle'>): T | undefined;
}

export function machineHandles<T>(): MachineHandles<T> {
  const states = new WeakMap<object, T>();
  return {
    make(state) {
      const handle = Object.freeze({}) as MachineHandle;
      states.set(handle, state);
      return handle;
    },
    read(machine) {
      return machine.handle ? states.get(machine.handle) : undefined;
    },
  };
}
