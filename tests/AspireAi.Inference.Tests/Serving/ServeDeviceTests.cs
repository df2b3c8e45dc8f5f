using AspireAi.Inference.Backends.Cuda.Driver;
using AspireAi.Inference.Cli;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Serving;

/// <summary><c>serve --device auto|cuda|cpu</c>: the same choice as the other commands, with the reason in the error.</summary>
public sealed class ServeDeviceTests
{
    [Fact]
    public async Task An_unknown_device_is_refused_naming_the_choices()
    {
        using var temp = new TempDirectory();
        var path = temp.File("tiny.gguf");
        new TinyGgufModel { Vocabulary = 64, Context = 128, Seed = 3 }.CreateWriter().WriteTo(path);

        var error = await Assert.ThrowsAnyAsync<ArgumentException>(() => ServingHost.StartAsync(path, "--device", "tpu"));
        Assert.Contains("Inference:Device (--device) must be auto, cuda, cpu, not 'tpu'", error.Message);
    }

    [Fact]
    public async Task Cuda_without_a_gpu_fails_with_the_drivers_reason_and_auto_serves_on_the_cpu()
    {
        using var temp = new TempDirectory();
        var path = temp.File("tiny.gguf");
        new TinyGgufModel { Vocabulary = 64, Context = 128, Seed = 3 }.CreateWriter().WriteTo(path);
        if (CudaContext.IsAvailable(out var why))
        {
            Assert.Skip($"a GPU is present ({why}): GpuCheck's serve run covers --device cuda there");
        }

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ServingHost.StartAsync(path, "--device", "cuda"));
        Assert.Contains($"--device cuda: {why}", error.Message);
        await using var host = await ServingHost.StartAsync(path, "--device", "auto", "--kv-cache-tokens", "256");
        Assert.Contains("cpu", host.Model.BackendDescription);
    }
}
