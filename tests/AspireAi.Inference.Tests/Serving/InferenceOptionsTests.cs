using AspireAi.Inference.Serving;

namespace AspireAi.Inference.Tests.Serving;

public sealed class InferenceOptionsTests
{
    [Theory]
    [InlineData("/models/stories15M-q8_0.gguf", null, "stories15M-q8_0")]
    [InlineData("models/Qwen3-0.6B/", null, "Qwen3-0.6B")]
    [InlineData("random:llama3.2-1b:bf16:4096", null, "random:llama3.2-1b:bf16:4096")] // the dot is no extension
    [InlineData("random:qwen3-0.6b", null, "random:qwen3-0.6b")]
    [InlineData("/models/a.gguf", "my-model", "my-model")]
    [InlineData(null, null, "stories15M")]
    public void The_served_model_id_is_the_file_name_or_the_whole_random_reference(string? model, string? servedName, string expected) =>
        Assert.Equal(expected, new InferenceOptions { Model = model, ServedModelName = servedName }.ModelId);
}
