export default async function globalTeardown(): Promise<void> {
  await globalThis.__ktubeTestenv?.stop();
  globalThis.__ktubeTestenv = undefined;
}
