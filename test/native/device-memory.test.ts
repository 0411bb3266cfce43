// olmo_device_memory and olmo_host_register through the Backend (CPU library here; the CUDA
// library answers with cudaMemGetInfo / cudaHostRegister where a GPU is usable).
import { expect, test } from "bun:test";
import { freemem, totalmem } from "node:os";
import { openBackend } from "../support/native.ts";

test("deviceMemory: the host's available and total memory on the CPU library", () => {
  const be = openBackend("cpu");
  const { freeBytes, totalBytes } = be.deviceMemory();
  expect(totalBytes).toBe(totalmem());
  expect(freeBytes).toBeGreaterThan(0);
  expect(freeBytes).toBeLessThanOrEqual(totalBytes);
  // MemAvailable counts reclaimable page cache too, so it is at least the free pages
  expect(freeBytes).toBeGreaterThanOrEqual(freemem() * 0.5);
});

test("pinHost: registering and unregistering a host buffer (nothing to lock on the CPU library)", () => {
  const be = openBackend("cpu");
  const buf = new Float32Array(new SharedArrayBuffer(1 << 20));
  const unpin = be.pinHost(buf);
  buf[0] = 1;
  unpin();
  expect(buf[0]).toBe(1);
});
