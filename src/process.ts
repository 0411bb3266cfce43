// Facts about other processes on this host, for the files that name one (temporary folders of a
// save, the run folder's lock): a leaf every module may use.

/** true while a process with this pid exists (EPERM: it exists, owned by another user). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
