using System.Reflection;
using AspireAi.Inference.Backends.Cuda.Driver;

namespace AspireAi.Inference.Backends.Cuda;

/// <summary>
/// The PTX modules of <c>Backends/Cuda/Kernels</c> (embedded as resources <c>AspireAi.Inference.Cuda.&lt;name&gt;.ptx</c>,
/// or read from a folder when one is given, for kernel development on the GPU machine) and every kernel the backend launches.
/// </summary>
public sealed class CudaKernels : IDisposable
{
    /// <summary>The kernel source files (without extension); each has a PTX file of the same name.</summary>
    public static readonly string[] ModuleNames = ["elementwise", "matmul", "attention", "sampling"];

    private readonly CudaModule[] _modules;

    public CudaKernels(CudaContext context, string? ptxDirectory = null)
    {
        _modules = ModuleNames.Select(name => new CudaModule(context, name + ".ptx", LoadPtx(name, ptxDirectory))).ToArray();
        var elementwise = _modules[0];
        var matmul = _modules[1];
        var attention = _modules[2];
        var sampling = _modules[3];
        EmbedRows = elementwise.Kernel("embed_rows");
        RmsNormRows = elementwise.Kernel("rms_norm_rows");
        RmsNormGroups = elementwise.Kernel("rms_norm_groups");
        RopeStoreKv = elementwise.Kernel("rope_store_kv");
        SiluMul = elementwise.Kernel("silu_mul");
        AddBias = elementwise.Kernel("add_bias");
        GatherRows = elementwise.Kernel("gather_rows");
        QuantizeQ8 = elementwise.Kernel("quantize_q8");
        GemvInt8 = matmul.Kernel("gemv_int8");
        GemvInt8Mins = matmul.Kernel("gemv_int8_mins");
        GemvInt8Halves = matmul.Kernel("gemv_int8_halves");
        GemvNibble = matmul.Kernel("gemv_nibble");
        GemvNibbleMins = matmul.Kernel("gemv_nibble_mins");
        GemmInt8 = matmul.Kernel("gemm_int8");
        GemmInt8Mins = matmul.Kernel("gemm_int8_mins");
        GemmInt8Halves = matmul.Kernel("gemm_int8_halves");
        GemmNibble = matmul.Kernel("gemm_nibble");
        GemmNibbleMins = matmul.Kernel("gemm_nibble_mins");
        GemvF32 = matmul.Kernel("gemv_f32");
        GemvF16 = matmul.Kernel("gemv_f16");
        GemvBf16 = matmul.Kernel("gemv_bf16");
        GemmF32 = matmul.Kernel("gemm_f32");
        GemmF16 = matmul.Kernel("gemm_f16");
        GemmBf16 = matmul.Kernel("gemm_bf16");
        AttentionPartition = attention.Kernel("attention_partition");
        AttentionReduce = attention.Kernel("attention_reduce");
        ArgmaxRows = sampling.Kernel("argmax_rows");
        SampleRows = sampling.Kernel("sample_rows");
    }

    /// <summary>The PTX text of module <paramref name="name"/>: from <paramref name="directory"/> when given, else embedded.</summary>
    public static string LoadPtx(string name, string? directory = null)
    {
        if (directory is not null)
        {
            var path = Path.Combine(directory, name + ".ptx");
            return File.Exists(path) ? File.ReadAllText(path) : throw new FileNotFoundException($"PTX module '{path}' does not exist.", path);
        }

        var resource = $"AspireAi.Inference.Cuda.{name}.ptx";
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"The assembly holds no PTX resource '{resource}': regenerate the PTX with tools/gpu/build-ptx.sh.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    public CudaKernel EmbedRows { get; }
    public CudaKernel RmsNormRows { get; }
    public CudaKernel RmsNormGroups { get; }
    public CudaKernel RopeStoreKv { get; }
    public CudaKernel SiluMul { get; }
    public CudaKernel AddBias { get; }
    public CudaKernel GatherRows { get; }
    public CudaKernel QuantizeQ8 { get; }
    public CudaKernel GemvInt8 { get; }
    public CudaKernel GemvInt8Mins { get; }
    public CudaKernel GemvInt8Halves { get; }
    public CudaKernel GemvNibble { get; }
    public CudaKernel GemvNibbleMins { get; }
    public CudaKernel GemmInt8 { get; }
    public CudaKernel GemmInt8Mins { get; }
    public CudaKernel GemmInt8Halves { get; }
    public CudaKernel GemmNibble { get; }
    public CudaKernel GemmNibbleMins { get; }
    public CudaKernel GemvF32 { get; }
    public CudaKernel GemvF16 { get; }
    public CudaKernel GemvBf16 { get; }
    public CudaKernel GemmF32 { get; }
    public CudaKernel GemmF16 { get; }
    public CudaKernel GemmBf16 { get; }
    public CudaKernel AttentionPartition { get; }
    public CudaKernel AttentionReduce { get; }
    public CudaKernel ArgmaxRows { get; }
    public CudaKernel SampleRows { get; }

    /// <summary>The quantized matmul kernel (GEMV or GEMM) for a weight's layout.</summary>
    public CudaKernel QuantizedMatMul(CudaWeight weight, bool gemv) => (weight.Layout, weight.ScalesPerBlock, weight.Mins is not null) switch
    {
        (CudaWeightLayout.Int8, 1, false) => gemv ? GemvInt8 : GemmInt8,
        (CudaWeightLayout.Int8, 1, true) => gemv ? GemvInt8Mins : GemmInt8Mins,
        (CudaWeightLayout.Int8, 2, false) => gemv ? GemvInt8Halves : GemmInt8Halves,
        (CudaWeightLayout.Nibble, 1, false) => gemv ? GemvNibble : GemmNibble,
        (CudaWeightLayout.Nibble, 1, true) => gemv ? GemvNibbleMins : GemmNibbleMins,
        _ => throw new InvalidOperationException($"No matmul kernel for weight '{weight.Name}' ({weight.Layout}, {weight.ScalesPerBlock} scales per block)."),
    };

    public CudaKernel FloatMatMul(CudaWeight weight, bool gemv) => weight.Layout switch
    {
        CudaWeightLayout.Float32 => gemv ? GemvF32 : GemmF32,
        CudaWeightLayout.Float16 => gemv ? GemvF16 : GemmF16,
        CudaWeightLayout.BFloat16 => gemv ? GemvBf16 : GemmBf16,
        _ => throw new InvalidOperationException($"Weight '{weight.Name}' is not a float weight."),
    };

    public void Dispose()
    {
        foreach (var module in _modules)
        {
            module.Dispose();
        }
    }
}
