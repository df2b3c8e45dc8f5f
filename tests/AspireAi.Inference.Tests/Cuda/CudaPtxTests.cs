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

    /// <summary>
    /// Every module's two builds, the sm_80 PTX and the sm_90 one (programmatic dependent launch), and the Hopper modules'
    /// only build, sm_90a (wgmma).
    /// </summary>
    public static TheoryData<string, string> Builds => new()
    {
        { "", "sm_80" },
        { CudaKernels.DependentLaunchSuffix, "sm_90" },
        { CudaKernels.HopperSuffix, "sm_90a" },
    };

    public static TheoryData<string> Suffixes => ["", CudaKernels.DependentLaunchSuffix, CudaKernels.HopperSuffix];

    private static string[] ModulesOf(string suffix) => suffix == CudaKernels.HopperSuffix ? CudaKernels.HopperModuleNames : CudaKernels.ModuleNames;

    [Theory]
    [MemberData(nameof(Builds))]
    public void EverySourceHasPtxRecordingItsCurrentHash(string suffix, string target)
    {
        var sources = Directory.GetFiles(KernelDirectory, "*.cu").Select(Path.GetFileNameWithoutExtension).Order().ToArray();
        Assert.Equal(CudaKernels.ModuleNames.Concat(CudaKernels.HopperModuleNames).Order(), sources);
        foreach (var name in ModulesOf(suffix))
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
    public void OnlyTheHopperBuildsWaitForThePreviousKernel()
    {
        var hopperBuilds = CudaKernels.ModuleNames.Select(name => name + CudaKernels.DependentLaunchSuffix)
            .Concat(CudaKernels.HopperModuleNames.Select(name => name + CudaKernels.HopperSuffix));
        foreach (var build in hopperBuilds)
        {
            var ptx = File.ReadAllText(Path.Combine(KernelDirectory, build + ".ptx"));
            var entries = Regex.Matches(ptx, @"\.visible \.entry (\w+)\(");
            // Every kernel launched with programmatic serialization must wait: at least one wait per entry.
            Assert.True(Regex.Count(ptx, @"griddepcontrol\.wait") >= entries.Count, $"{build}.ptx: fewer griddepcontrol.wait than kernels");
        }

        foreach (var name in CudaKernels.ModuleNames)
        {
            Assert.DoesNotContain("griddepcontrol", File.ReadAllText(Path.Combine(KernelDirectory, name + ".ptx")));
        }
    }

    [Fact]
    public void TheHopperModuleHasEveryWarpgroupGemmVariant()
    {
        var ptx = File.ReadAllText(Path.Combine(KernelDirectory, "gemm_hopper" + CudaKernels.HopperSuffix + ".ptx"));
        foreach (var type in new[] { "f16", "bf16" })
        {
            foreach (var tile in CudaLaunchGeometry.WarpgroupGemmTiles)
            {
                Assert.Contains($".visible .entry gemm_{type}_wgmma{tile.KernelSuffix}(", ptx);
                Assert.Contains($".visible .entry gemm_{type}_wgmma_gated{tile.KernelSuffix}(", ptx);
            }
        }

        Assert.Contains("wgmma.mma_async", ptx);
        Assert.Contains("cp.async.bulk.tensor.2d", ptx);
    }

    [Theory]
    [MemberData(nameof(Suffixes))]
    public void EmbeddedPtxIsTheCommittedFile(string suffix)
    {
        foreach (var name in ModulesOf(suffix))
        {
            Assert.Equal(File.ReadAllText(Path.Combine(KernelDirectory, name + suffix + ".ptx")), CudaKernels.LoadPtx(name + suffix));
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData(CudaKernels.DependentLaunchSuffix)]
    public void EveryKernelTheBackendLaunchesIsAnEntryOfItsModule(string suffix)
    {
        // The kernels named literally there (the Hopper GEMM's names are built from its tile widths: checked above), in the
        // modules of this build or the sm_90a-only ones.
        var entries = CudaKernels.ModuleNames.Select(name => name + suffix).Concat(CudaKernels.HopperModuleNames.Select(name => name + CudaKernels.HopperSuffix))
            .SelectMany(build => Regex.Matches(File.ReadAllText(Path.Combine(KernelDirectory, build + ".ptx")), @"\.visible \.entry (\w+)\(").Select(m => m.Groups[1].Value))
            .ToHashSet();
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
