namespace AspireAi.Inference.Serving;

/// <summary>
/// The <c>Inference</c> configuration section; each key mirrors a <c>serve</c> flag (<c>Inference:Model</c> ↔ <c>--model</c>,
/// <c>Inference:KvCacheTokens</c> ↔ <c>--kv-cache-tokens</c>).
/// </summary>
public sealed class InferenceOptions
{
    public const string Section = "Inference";

    /// <summary>Path of the model file or folder to serve; empty: the default model (stories15M).</summary>
    public string? Model { get; set; }

    /// <summary>The id clients name in <c>model</c>; defaults to the model file's name without extension.</summary>
    public string? ServedModelName { get; set; }

    /// <summary><c>cpu</c> or <c>auto</c> (the best available; the CPU until a device backend exists).</summary>
    public string Device { get; set; } = "auto";

    /// <summary>Quantize a safetensors model on load: <c>q8_0</c> or <c>q4_0</c>; empty keeps the file's types.</summary>
    public string? Quantize { get; set; }

    /// <summary>CPU threads of the forward pass (0: every core); under tensor parallelism on the CPU, shared by the ranks.</summary>
    public int Threads { get; set; }

    /// <summary>
    /// Ranks the model is split over (<c>--tensor-parallel-size</c>, vLLM's flag): that many GPUs with <c>cuda</c>; with
    /// <c>cpu</c>, that many ranks as threads of this process (slower than one; it exists to test the tensor-parallel path).
    /// </summary>
    public int TensorParallelSize { get; set; } = 1;

    /// <summary>Tokens per KV block.</summary>
    public int BlockSize { get; set; } = 16;

    /// <summary>KV cache capacity in tokens; 0: <see cref="KvCacheFraction"/> of the free memory.</summary>
    public int KvCacheTokens { get; set; }

    /// <summary>
    /// Tokens of KV blocks kept in host memory after they leave the KV cache (the offload tier: pinned memory on a GPU);
    /// 0: none. A prefix found there is copied back instead of being computed again.
    /// </summary>
    public int KvOffloadTokens { get; set; }

    /// <summary>Share of the free memory after the weights are loaded (free RAM on the CPU) given to the KV cache, capped at
    /// what <see cref="MaxNumSeqs"/> full-context sequences can use; unset: the backend's default
    /// (<see cref="Backends.IBackend.DefaultKvCacheFraction"/>: 0.2 on the CPU, 0.8 on a GPU).</summary>
    public double? KvCacheFraction { get; set; }

    /// <summary>
    /// Element type of the KV cache (<c>--kv-cache-dtype</c>, vLLM's flag): <c>auto</c> (the backend's choice: f16 on CUDA,
    /// float32 on the CPU), <c>fp32</c>, <c>fp16</c> (CUDA only; the CPU backend refuses it), <c>bf16</c> (CPU only) or
    /// <c>fp8</c> (E4M3, both backends).
    /// </summary>
    public string KvCacheDtype { get; set; } = "auto";

    /// <summary>Most tokens one engine step computes (decode tokens plus prefill chunks).</summary>
    public int MaxBatchedTokens { get; set; } = 512;

    /// <summary>Most sequences running at once.</summary>
    public int MaxNumSeqs { get; set; } = 32;

    /// <summary>Most requests waiting; more get 503 with Retry-After.</summary>
    public int MaxWaiting { get; set; } = 1024;

    /// <summary>Most running sequences of one tenant (0: no cap).</summary>
    public int MaxRunningPerTenant { get; set; }

    /// <summary>Share of each step batch (Batch API) sequences may use while interactive requests run (0: paused until idle).</summary>
    public double BatchShare { get; set; }

    /// <summary>Most tokens of batch (Batch API) work per engine step (see <c>EngineOptions.BatchStepTokens</c>).</summary>
    public int BatchStepTokens { get; set; } = 64;

    /// <summary>Run every step eagerly instead of replaying CUDA graphs of decode steps (vLLM's <c>--enforce-eager</c>; see <c>EngineOptions.CudaGraphs</c>).</summary>
    public bool EnforceEager { get; set; }

    /// <summary>A Jinja chat template file that replaces the model's own (vLLM's <c>--chat-template</c>).</summary>
    public string? ChatTemplate { get; set; }

    /// <summary>Largest JSON request body accepted (bytes); <c>/v1/files</c> accepts <see cref="MaxFileBytes"/>.</summary>
    public long MaxRequestBodyBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest batch input file accepted by <c>/v1/files</c> (bytes).</summary>
    public long MaxFileBytes { get; set; } = 100 * 1024 * 1024;

    /// <summary>
    /// Folder of what must outlive a restart: Batch API files and batches (<c>--state-dir</c>). Empty:
    /// <c>$XDG_DATA_HOME/aspireai/inference</c>, i.e. <c>~/.local/share/aspireai/inference</c>. The AppHost passes a folder
    /// under its own state folder.
    /// </summary>
    public string? StateDir { get; set; }

    public string ResolvedStateDir
    {
        get
        {
            if (!string.IsNullOrWhiteSpace(StateDir))
            {
                return Path.GetFullPath(StateDir);
            }

            var data = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
            if (string.IsNullOrEmpty(data))
            {
                data = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
            }

            return Path.Combine(data, "aspireai", "inference");
        }
    }

    /// <summary>
    /// The name the model is served as: <see cref="ServedModelName"/>, else the file or folder name without a model file's
    /// extension (.gguf, .safetensors), or a <c>random:</c> reference whole. Only those extensions are cut: names hold
    /// dots (Qwen3-0.6B, random:llama3.2-1b).
    /// </summary>
    public string ModelId => ServedModelName is { Length: > 0 } name ? name
        : string.IsNullOrEmpty(Model) ? "stories15M"
        : Model.StartsWith(Models.Synthetic.RandomModel.Prefix, StringComparison.OrdinalIgnoreCase) ? Model
        : WithoutModelExtension(Path.GetFileName(Model.TrimEnd('/', '\\')));

    private static string WithoutModelExtension(string name) =>
        Path.GetExtension(name).ToLowerInvariant() is ".gguf" or ".safetensors" ? Path.GetFileNameWithoutExtension(name) : name;
}
