namespace AspireAi.Inference.Backends;

/// <summary>One product of a <see cref="IBackend.MatMulGroup"/>: the weight and the tensor its output goes to.</summary>
public readonly record struct MatMulTarget(DeviceWeight Weight, DeviceTensor Output);
