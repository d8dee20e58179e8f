/**
 * What a command records before the process leaves on a second Ctrl-C ("quit now"), when
 * it does not wait for its work to stop: e.g. a rewrap job marked stopped, so `retire` and
 * `status` see it as incomplete at once rather than running until its lease passes.
 */
const hooks = new Set<() => Promise<unknown>>();

/** Registers `hook` until the returned function is called (the command is done). */
export function onQuit(hook: () => Promise<unknown>): () => void {
  hooks.add(hook);
  return () => {
    hooks.delete(hook);
  };
}

/** Runs every hook at once, for at most `timeoutMs`; a failing hook is ignored. */
export async function runQuitHooks(timeoutMs: number): Promise<void> {
  if (hooks.size === 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    Promise.allSettled([...hooks].map((hook) => hook())),
    new Promise((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    }),
  ]);
  clearTimeout(timer);
}
