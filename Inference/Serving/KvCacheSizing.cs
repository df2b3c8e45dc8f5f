using AspireAi.Inference.Backends;
using AspireAi.Inference.Models;

namespace AspireAi.Inference.Serving;

/// <summary>How many KV blocks to allocate: a fixed token count, or a share of the backend's free memory (host RAM or GPU memory, measured after the weights are loaded).</summary>
public static class KvCacheSizing
{
    /// <summary>Bytes of keys and values one token takes across every layer, stored as <paramref name="dtype"/> (resolved).</summary>
    public static long BytesPerToken(ModelConfig config, KvCacheDtype dtype) =>
        (long)config.LayerCount * 2 * config.KvHeadCount * config.HeadDim * dtype.ElementBytes();

    /// <param name="defaultFraction">The share of <paramref name="availableBytes"/> to use when the options set none (the backend's).</param>
    /// <param name="dtype">The element type the backend stores (<see cref="IBackend.ResolveKvCacheDtype"/>): at f16 the same
    /// memory holds twice the tokens.</param>
    public static int Blocks(ModelConfig config, InferenceOptions options, long availableBytes, double defaultFraction, KvCacheDtype dtype,
        ILogger? logger = null)
    {
        var blockSize = options.BlockSize;
        if (blockSize <= 0)
        {
            throw new ArgumentException($"Inference:BlockSize (--block-size) must be > 0, not {blockSize}.");
        }

        var minimum = (config.ContextLength + blockSize - 1) / blockSize; // one full-context sequence must fit
        long tokens;
        if (options.KvCacheTokens > 0)
        {
            tokens = options.KvCacheTokens;
        }
        else
        {
            var fraction = options.KvCacheFraction ?? defaultFraction;
            if (!(fraction > 0 && fraction <= 1))
            {
                throw new ArgumentException($"Inference:KvCacheFraction (--kv-cache-fraction) must be in (0, 1], not {fraction}.");
            }

            var free = availableBytes;
            var bytesPerToken = BytesPerToken(config, dtype);
            tokens = (long)(free * fraction / bytesPerToken);
            // Beyond every sequence at full context, more blocks only keep more prefixes cached; stop at twice that.
            tokens = Math.Min(tokens, 2L * options.MaxNumSeqs * config.ContextLength);
            logger?.LogInformation("KV cache: {Fraction:P0} of {Free:N0} MB free memory → {Tokens:N0} tokens ({Bytes:N0} bytes per token, {Dtype})",
                fraction, free / 1_000_000, tokens, bytesPerToken, dtype.Name());
        }

        var blocks = (int)Math.Min(int.MaxValue, (tokens + blockSize - 1) / blockSize);
        if (blocks < minimum)
        {
            if (options.KvCacheTokens > 0)
            {
                throw new ArgumentException($"Inference:KvCacheTokens (--kv-cache-tokens) {options.KvCacheTokens} cannot hold one sequence of the model's context ({config.ContextLength} tokens).");
            }

            blocks = minimum;
        }

        return blocks;
    }

    /// <summary>Host slots of the KV offload tier: <c>--kv-offload-tokens</c> rounded up to whole blocks (0: no tier).</summary>
    public static int OffloadBlocks(ModelConfig config, InferenceOptions options, KvCacheDtype dtype, ILogger? logger = null)
    {
        if (options.KvOffloadTokens < 0)
        {
            throw new ArgumentException($"Inference:KvOffloadTokens (--kv-offload-tokens) must be ≥ 0, not {options.KvOffloadTokens}.");
        }

        if (options.KvOffloadTokens == 0)
        {
            return 0;
        }

        var blocks = (int)(((long)options.KvOffloadTokens + options.BlockSize - 1) / options.BlockSize);
        logger?.LogInformation("KV offload tier: {Blocks:N0} blocks × {BlockSize} tokens in host memory ({Bytes:N0} MB)",
            blocks, options.BlockSize, (long)blocks * options.BlockSize * BytesPerToken(config, dtype) / 1_000_000);
        return blocks;
    }
}
