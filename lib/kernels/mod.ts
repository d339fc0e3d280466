/**
 * The hand-written kernels as the rest of the project uses them: TF.js ops with their gradients
 * (importing this module registers them on the cpu, wasm and webgpu backends), and the switches that
 * benchmarks and tests turn. Models and the scan API import kernels from here; the kernels' own files
 * (wasm/, webgpu/, tfjs/) are for tests and benchmarks that time or compare one kernel.
 */
export {
  channelsLastScanAvailable,
  fusedScanAvailable,
  fusedSelectiveScan,
  fusedSelectiveScanChannelsLast,
  type ScanInputs,
  type ScanOptions,
  type ScanResult,
} from "./tfjs/scan_op.ts";
export { fastMatMul, setWebGPUGemm, webgpuGemmEnabled } from "./tfjs/matmul_op.ts";
export { fusedCausalConvSilu, fusedConvAvailable } from "./tfjs/conv_op.ts";
export {
  kernelModules,
  setThreads,
  setWasmKernels,
  threadCount,
  wasmKernelsAvailable,
  wasmKernelsEnabled,
} from "./wasm/pool.ts";
export {
  DECODE_MEMORY_FLOATS,
  DECODE_THREAD_KERNELS,
  DecodeFn,
  type DecodeKernels,
  decodeKernels,
  decodeKernelsUnavailable,
  formatFits,
  matvec,
  matvecBf16,
  matvecQ8,
  plainStepperInstead,
  Q8_BLOCK,
  quantizeQ8,
  quantizeX16,
  toBf16,
  WEIGHT_FORMATS,
  type WeightFormat,
} from "./wasm/decode.ts";
export { KernelThreads, splitAligned } from "./wasm/threads.ts";
