import { describe, expect, it } from "vitest";
import { BufferStream } from "../src/io.js";
import { createProgressReporter, formatEta, type StepProgress } from "../src/progress.js";
import { controlCharacters } from "./fixtures.js";

function steps(total: number, epochs: number): StepProgress[] {
  return Array.from({ length: total }, (_, index) => ({
    step: index + 1,
    totalSteps: total,
    epoch: Math.floor((index * epochs) / total) + 1,
    epochs,
    loss: 0.7 - index * 0.001,
    examplesPerSecond: 12_345.6,
    etaSeconds: (total - index - 1) * 0.5,
  }));
}

describe("progress display", () => {
  it("writes plain lines without control characters when the stream is not a TTY (BAD_INPUTS 28)", () => {
    const stream = new BufferStream({ isTTY: false });
    const progress = createProgressReporter(stream);
    progress.begin("cesaa", 100);
    for (const step of steps(100, 2)) progress.step(step);
    progress.line("[cesaa] epoch 2/2: loss 0.6000");
    progress.end();
    const lines = stream.text.trimEnd().split("\n");
    expect(controlCharacters(stream.text)).toEqual([]);
    expect(lines[0]).toBe("[cesaa] training: 100 steps");
    // One line per 10% of the steps, the last at 100%.
    expect(lines.filter((line) => line.includes(" step "))).toHaveLength(10);
    expect(lines).toContain("[cesaa] step 100/100 (100%) epoch 2/2 loss 0.6010 12,346 ex/s ETA 0s");
    expect(lines.at(-1)).toBe("[cesaa] epoch 2/2: loss 0.6000");
  });

  it("prints a line when the interval passes even inside a decile", () => {
    const stream = new BufferStream({ isTTY: false });
    let now = 0;
    const progress = createProgressReporter(stream, { plainIntervalMs: 1000, now: () => now });
    progress.begin("star", 1000);
    for (const step of steps(1000, 1).slice(0, 50)) {
      now += 100;
      progress.step(step);
    }
    // 50 steps x 100 ms = 5 s: one line per second, no decile reached.
    expect(stream.text.split("\n").filter((line) => line.includes(" step "))).toHaveLength(5);
  });

  it("draws a bar with loss, examples/s and ETA on a TTY", () => {
    const stream = new BufferStream({ isTTY: true });
    const progress = createProgressReporter(stream);
    progress.begin("mmoe", 10);
    for (const step of steps(10, 1)) progress.step(step);
    progress.line("[mmoe] epoch 1/1 done");
    progress.end();
    expect(controlCharacters(stream.text)).toContain("U+001b");
    expect(stream.text).toContain("loss 0.6910");
    expect(stream.text).toContain("12,346 ex/s");
    expect(stream.text).toContain("ETA 0s");
    expect(stream.text).toContain("[mmoe] epoch 1/1 done");
  });

  it("formats ETAs", () => {
    expect(formatEta(12.3)).toBe("12s");
    expect(formatEta(75)).toBe("1m15s");
    expect(formatEta(Number.NaN)).toBe("?");
  });
});
