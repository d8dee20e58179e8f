/**
 * The handle every protocol test server in test/servers returns, and the faults each can
 * inject. Counters are over all requests since `resetCalls()`; each server documents what
 * its throttle and failure answers look like on its wire protocol.
 */
export interface FaultOptions {
  /** Delay before every response. */
  latencyMs?: number;
  /** Every Nth request gets the protocol's throttling answer. 1 = every request. */
  throttleEvery?: number;
  /** Every Nth request gets a 5xx. */
  failEvery?: number;
  /** Every Nth request has its socket destroyed without an answer. */
  dropEvery?: number;
  /** Never answer (the socket stays open until the client gives up or the server closes). */
  hang?: boolean;
}

export interface TestServer {
  url: string;
  /** Requests received per operation (faulted ones included). */
  calls: Record<string, number>;
  /** Mutable: change faults between (or during) tests. */
  faults: FaultOptions;
  resetCalls(): void;
  close(): Promise<void>;
}
