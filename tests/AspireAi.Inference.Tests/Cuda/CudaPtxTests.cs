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

    /// <summary>Every module's two builds: the sm_80 PTX and the sm_90 one (programmatic dependent launch).</summary>
    public static TheoryData<string, string> Builds => new()
    {
        { "", "sm_80" },
        { CudaKernels.DependentLaunchSuffix, "sm_90" },
    };

    public static TheoryData<string> Suffixes => ["", CudaKernels.DependentLaunchSuffix];

    [Theory]
    [MemberData(nameof(Builds))]
    public void EverySourceHasPtxRecordingItsCurrentHash(string suffix, string target)
    {
        var sources = Directory.GetFiles(KernelDirectory, "*.cu").Select(Path.GetFileNameWithoutExtension).Order().ToArray();
        Assert.Equal(CudaKernels.ModuleNames.Order(), sources);
        foreach (var name in sources)
        {
            var ptx = File.ReadAllText(Path.Combine(KernelDirectory, name + suffix + ".ptx"));
            var recorded = SourceHash().Matches(ptx).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
            Assert.Equal(new[] { "common.cuh", name + ".cu" }.Order(StringComparer.Ordinal), recorded.Keys.Order(StringComparer.Ordinal));
            foreach (var (file, hash) in recorded)
            {
                var actual = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(KernelDirectory, file))));
                Assert.True(actual == hash, $"{name}{suffix}.ptx was made from a different {file} (recorded {hash}, now {actual}): run tools/gpu/build-ptx.sh on the GPU machine.");
            }

            Assert.Contains($".target {target}", ptx);
        }
    }

    [Fact]
    public void OnlyTheSm90BuildWaitsForThePreviousKernel()
    {
        foreach (var name in CudaKernels.ModuleNames)
        {
            var ptx = File.ReadAllText(Path.Combine(KernelDirectory, name + CudaKernels.DependentLaunchSuffix + ".ptx"));
            var entries = Regex.Matches(ptx, @"\.visible \.entry (\w+)\(");
            // Every kernel launched with programmatic serialization must wait: at least one wait per entry.
            Assert.True(Regex.Count(ptx, @"griddepcontrol\.wait") >= entries.Count, $"{name}{CudaKernels.DependentLaunchSuffix}.ptx: fewer griddepcontrol.wait than kernels");
            Assert.DoesNotContain("griddepcontrol", File.ReadAllText(Path.Combine(KernelDirectory, name + ".ptx")));
        }
    }

    [Theory]
    [MemberData(nameof(Suffixes))]
    public void EmbeddedPtxIsTheCommittedFile(string suffix)
    {
        foreach (var name in CudaKernels.ModuleNames)
        {
            Assert.Equal(File.ReadAllText(Path.Combine(KernelDirectory, name + suffix + ".ptx")), CudaKernels.LoadPtx(name + suffix));
        }
    }

    [Theory]
    [MemberData(nameof(Suffixes))]
    public void EveryKernelTheBackendLaunchesIsAnEntryOfItsModule(string suffix)
    {
        var entries = CudaKernels.ModuleNames.SelectMany(name =>
            Regex.Matches(File.ReadAllText(Path.Combine(KernelDirectory, name + suffix + ".ptx")), @"\.visible \.entry (\w+)\(").Select(m => m.Groups[1].Value)).ToHashSet();
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
