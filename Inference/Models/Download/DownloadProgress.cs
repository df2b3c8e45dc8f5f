namespace AspireAi.Inference.Models.Download;

/// <summary>How far one stage of getting a model has come: bytes downloaded, or tensors converted.</summary>
/// <param name="Stage">What is happening, for people ("downloading stories15M").</param>
/// <param name="Total">Null when the server did not say how much is coming.</param>
/// <param name="Unit">"bytes" or "tensors".</param>
public readonly record struct DownloadProgress(string Stage, long Done, long? Total, string Unit = "bytes");
