/** Stops the run's emulator by its process id. */
export default function globalTeardown(): void {
  const pid = Number(process.env.MOTO_PID);
  if (!pid) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // Already gone.
  }
}
