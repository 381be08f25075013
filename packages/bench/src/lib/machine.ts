import { cpus, freemem, loadavg, platform, release, totalmem } from "node:os";
import * as tf from "@tensorflow/tfjs-core";

/** Where the figures were measured. Written into bench-results.json and docs/benchmarks.md. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  tfjs: string;
  /** 1-minute load average when the run started: other processes share these cores. */
  loadAverage: number;
}

/** Describes this machine and the software versions. */
export function machineInfo(): MachineInfo {
  const processors = cpus();
  return {
    cpu: processors[0]?.model.trim() ?? "unknown",
    cores: processors.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    tfjs: tf.version_core,
    loadAverage: Math.round(loadavg()[0]! * 100) / 100,
  };
}

/** Free memory in GiB (for the run log). */
export function freeMemoryGiB(): number {
  return Math.round((freemem() / 2 ** 30) * 10) / 10;
}
