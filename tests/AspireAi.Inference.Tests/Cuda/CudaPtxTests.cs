using System.Security.Cryptography;
using System.Text.RegularExpressions;
using AspireAi.Inference.Backends.Cuda;
using AspireAi.Inference.Tests.Support;

namespace AspireAi.Inference.Tests.Cuda;

/// <summary>
/// The committed PTX must come from the committed kernel sources: each PTX file names the sha256 of its .cu file and of
/// common.cuh (written by tools/gpu/build-ptx.sh), and a source edited without regenerating its PTX fails here.
/// </summary>
public sealed partial class CudaPtxTests
{
    private static string KernelDirectory => Path.Combine(TestPaths.RepositoryRoot, "Inference", "Backends", "Cuda", "Kernels");

    [GeneratedRegex(@"^// source-sha256 (\S+) ([0-9a-f]{64})$", RegexOptions.Multiline)]
    private static partial Regex SourceHash();

    [Fact]
    public void EverySourceHasPtxRecordingItsCurrentHash()
    {
        var sources = Directory.GetFiles(KernelDirectory, "*.cu").Select(Path.GetFileNameWithoutExtension).Order().ToArray();
        Assert.Equal(CudaKernels.ModuleNames.Order(), sources);
        foreach (var name in sources)
        {
            var ptx = File.ReadAllText(Path.Combine(KernelDirectory, name + ".ptx"));
            var recorded = SourceHash().Matches(ptx).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
            Assert.Equal(new[] { "common.cuh", name + ".cu" }.Order(StringComparer.Ordinal), recorded.Keys.Order(StringComparer.Ordinal));
            foreach (var (file, hash) in recorded)
            {
                var actual = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(KernelDirectory, file))));
                Assert.True(actual == hash, $"{name}.ptx was made from a different {file} (recorded {hash}, now {actual}): run tools/gpu/build-ptx.sh on the GPU machine.");
            }

            Assert.Contains(".target sm_80", ptx);
        }
    }

    [Fact]
    public void EmbeddedPtxIsTheCommittedFile()
    {
        foreach (var name in CudaKernels.ModuleNames)
        {
            Assert.Equal(File.ReadAllText(Path.Combine(KernelDirectory, name + ".ptx")), CudaKernels.LoadPtx(name));
        }
    }

    [Fact]
    public void EveryKernelTheBackendLaunchesIsAnEntryOfItsModule()
    {
        var entries = CudaKernels.ModuleNames.SelectMany(name =>
            Regex.Matches(File.ReadAllText(Path.Combine(KernelDirectory, name + ".ptx")), @"\.visible \.entry (\w+)\(").Select(m => m.Groups[1].Value)).ToHashSet();
        var launched = Regex.Matches(File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "Inference", "Backends", "Cuda", "CudaKernels.cs")), @"\.Kernel\(""(\w+)""\)")
            .Select(m => m.Groups[1].Value).ToArray();
        Assert.NotEmpty(launched);
        Assert.All(launched, name => Assert.Contains(name, entries));
    }

    [Fact]
    public void MissingPtxFolderFileIsNamed()
    {
        var error = Assert.Throws<FileNotFoundException>(() => CudaKernels.LoadPtx("matmul", Path.Combine(Path.GetTempPath(), "no-such-ptx-folder")));
        Assert.Contains("matmul.ptx", error.Message);
    }
}
