"""engineArgs cases and the planner's verdicts, shared by the unit tier (messages) and the engine tier (parsers)."""

from __future__ import annotations

# (engine args, index of the refused element, exact message) — TGI 3.3.7's real launcher rejected all nine.
TGI_REFUSED: list[tuple[list[str], int, str]] = [
    (
        ["--num_shard", "2"],
        0,
        "'--num_shard' is not a TGI 3.3.7 flag (unexpected argument '--num_shard' found); did you mean --num-shard? "
        "llmop sets it: set spec.gpu.count instead",
    ),
    (
        ["--tensor-parallel-size", "2"],
        0,
        "'--tensor-parallel-size' is not a TGI 3.3.7 flag (unexpected argument '--tensor-parallel-size' found); "
        "did you mean --num-shard? llmop sets it: set spec.gpu.count instead",
    ),
    (
        ["--speculate", "two"],
        0,
        "'--speculate two' is refused by TGI 3.3.7 (invalid value 'two' for '--speculate <SPECULATE>': invalid digit "
        "found in string); --speculate takes a non-negative integer",
    ),
    (
        ["--cuda-graphs", "1,2,x"],
        0,
        "'--cuda-graphs 1,2,x' is refused by TGI 3.3.7 (invalid value 'x' for '--cuda-graphs <CUDA_GRAPHS>': invalid "
        "digit found in string); --cuda-graphs takes a non-negative integer",
    ),
    (
        ["--json-output", "true"],
        1,
        "'true' is a value after --json-output, which takes none; TGI 3.3.7 refuses it (unexpected argument 'true' "
        "found); --json-output is a switch and takes no value: write --json-output",
    ),
    (
        ["--kv-cache-dtype", "fp8"],
        0,
        "'--kv-cache-dtype fp8' is refused by TGI 3.3.7 (invalid value 'fp8' for '--kv-cache-dtype <KV_CACHE_DTYPE>' "
        "[possible values: fp8_e4m3fn, fp8_e5m2]); use one of: fp8_e4m3fn, fp8_e5m2",
    ),
    (
        ["--max-concurrent-requests", "128", "--max-concurrent-requests", "256"],
        2,
        "'--max-concurrent-requests 256' sets --max-concurrent-requests again (also at spec.engineArgs[0]) and TGI "
        "3.3.7 refuses that (the argument '--max-concurrent-requests <MAX_CONCURRENT_REQUESTS>' cannot be used "
        "multiple times); give it once",
    ),
    (
        ["--max-batch-total-tokens", "4096"],
        0,
        "'--max-batch-total-tokens 4096' is refused by TGI 3.3.7 (`max_total_tokens` must be <= "
        "`max_batch_total_tokens`. Given: 8192 and 4096); llmop sets --max-total-tokens to spec.maxModelLen (8192); "
        "use --max-batch-total-tokens 8192 or more, or lower spec.maxModelLen",
    ),
    (
        ["--validation-workers", "0"],
        0,
        "'--validation-workers 0' is refused by TGI 3.3.7 (`validation_workers` must be > 0); use 1 or more",
    ),
]

# Parse-time failures of vLLM 0.33.0's own parser, and a repeat (the parser keeps the last value; llmop refuses).
VLLM_REFUSED: list[tuple[list[str], int, str]] = [
    (
        ["--max-num-seqs", "many"],
        0,
        "'--max-num-seqs many' is refused by vLLM 0.33.0 (argument --max-num-seqs: invalid int value: 'many'); "
        "--max-num-seqs takes an integer",
    ),
    (
        ["--enable-prefix-caching=maybe"],
        0,
        "'--enable-prefix-caching=maybe' is refused by vLLM 0.33.0 (argument "
        "--enable-prefix-caching/--disable-prefix-caching: ignored explicit argument 'maybe'); "
        "--enable-prefix-caching is a switch and takes no value: write --enable-prefix-caching or "
        "--disable-prefix-caching",
    ),
    (
        ["--swap-space", "4"],
        0,
        "'--swap-space' is not a vLLM 0.33.0 flag (unrecognized arguments: --swap-space); remove it",
    ),
    (
        ["--max-logprobs", "x"],
        0,
        "'--max-logprobs x' is refused by vLLM 0.33.0 (argument --max-logprobs: invalid int value: 'x'); "
        "--max-logprobs takes an integer",
    ),
    (
        ["--scheduling-policy", "random"],
        0,
        "'--scheduling-policy random' is refused by vLLM 0.33.0 (argument --scheduling-policy: invalid choice: "
        "'random' (choose from 'fcfs', 'priority')); use one of: fcfs, priority",
    ),
    (
        ["--seed", "1.5"],
        0,
        "'--seed 1.5' is refused by vLLM 0.33.0 (argument --seed: invalid int value: '1.5'); --seed takes an integer",
    ),
    (
        ["--performance-mode", "fastest"],
        0,
        "'--performance-mode fastest' is refused by vLLM 0.33.0 (argument --performance-mode: invalid choice: "
        "'fastest' (choose from 'balanced', 'interactivity', 'throughput')); use one of: balanced, interactivity, "
        "throughput",
    ),
    (
        ["--max-num-seqs"],
        0,
        "'--max-num-seqs' needs a value and vLLM 0.33.0 refuses it without one (argument --max-num-seqs: expected "
        "one argument); write --max-num-seqs followed by an integer",
    ),
    (
        ["--enforce-eager", "true"],
        1,
        "'true' is a value after --enforce-eager, which takes none; vLLM 0.33.0 refuses it (unrecognized arguments: "
        "true); --enforce-eager is a switch and takes no value: write --enforce-eager or --no-enforce-eager",
    ),
    (
        ["--max-num", "4"],
        0,
        "'--max-num' is refused by vLLM 0.33.0 (ambiguous option: --max-num could match --max-num-batched-tokens, "
        "--max-num-scheduled-tokens, --max-num-seqs, --max-num-active-seqs, --max-num-queued-reqs, "
        "--max-num-queued-tokens); write the whole flag name, one of: --max-num-batched-tokens, "
        "--max-num-scheduled-tokens, --max-num-seqs, --max-num-active-seqs, --max-num-queued-reqs, "
        "--max-num-queued-tokens",
    ),
    (
        ["--compilation-config.level=3"],
        0,
        "'--compilation-config.level=3' is refused by vLLM 0.33.0 (argument --compilation-config/-cc: 1 validation "
        "error for CompilationConfig | level | Unexpected keyword argument); --compilation-config takes a JSON object",
    ),
    (
        ["--enable-auto-tool-choice"],
        0,
        "'--enable-auto-tool-choice' is refused by vLLM 0.33.0 (Error: --enable-auto-tool-choice requires "
        "--tool-call-parser); add --tool-call-parser or remove --enable-auto-tool-choice",
    ),
]
# Refused by vLLM's SchedulerConfig (config/scheduler.py verify_max_model_len) when the engine is built, after the
# parser and the serve-args checks that scripts/vllm_argcheck.py runs.
VLLM_REFUSED_CONFIG: list[tuple[list[str], int, str]] = [
    (
        ["--max-num-batched-tokens", "2k", "--max-num-seqs", "4000"],
        0,
        "'--max-num-batched-tokens 2k' is refused by vLLM 0.33.0 (max_num_batched_tokens (2000) must be greater than "
        "or equal to max_num_seqs (4000).); use --max-num-batched-tokens 4000 or more, or a smaller --max-num-seqs",
    ),
]
# Refused by llmop although vLLM's parser takes them: it silently keeps the last of a repeated flag.
VLLM_REFUSED_AMBIGUOUS: list[tuple[list[str], int, str]] = [
    (
        ["--max-num-seqs", "64", "--max-num-seqs", "128"],
        2,
        "'--max-num-seqs 128' sets --max-num-seqs again (also at spec.engineArgs[0]); vLLM 0.33.0 would silently "
        "keep the last one, so llmop refuses the ambiguity; give it once",
    ),
    (
        ["--enable-prefix-caching", "--disable-prefix-caching"],
        1,
        "'--disable-prefix-caching' sets --enable-prefix-caching again (also at spec.engineArgs[0]); vLLM 0.33.0 "
        "would silently keep the last one, so llmop refuses the ambiguity; give it once",
    ),
]

TGI_ACCEPTED: list[list[str]] = [
    ["--max-concurrent-requests", "256"],
    ["--kv-cache-dtype", "fp8_e4m3fn"],
    ["--kv-cache-dtype=fp8_e5m2"],
    ["--cuda-graphs", "1,2,4,8"],
    ["--json-output"],
    ["--speculate", "2"],
    ["--max-batch-total-tokens", "16384", "--max-batch-prefill-tokens", "8192"],
    ["--validation-workers", "4", "--max-batch-size=4"],
    ["--cors-allow-origin", "a", "--cors-allow-origin", "b"],
    ["-e"],
    ["-g5"],
]
VLLM_ACCEPTED: list[list[str]] = [
    ["--enable-prefix-caching"],
    ["--no-enable-prefix-caching"],
    ["--max-num-seqs", "128"],
    ["--max_num_seqs=128"],
    ["--max-num-seq", "128"],
    ["--kv-cache-dtype", "fp8"],
    ["--scheduling-policy", "priority"],
    ["--performance-mode", "throughput"],
    ["--seed", "-1"],
    ["--max-num-batched-tokens", "16k"],
    ["--served-model-name", "my model", "other"],
    ["--compilation-config.mode=3"],
    ["--compilation-config", '{"mode": 3}'],
    ["-O3"],
    ["-dpl", "1"],
    ["--enforce-eager", "--max-logprobs", "10"],
    ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"],
    ["--moe-backend", "Deep-Gemm"],
    ["--middleware", "a.b", "--middleware", "c.d"],
]
