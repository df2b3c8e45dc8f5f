namespace AspireAi.Inference.Serving;

/// <summary>The <c>Inference</c> configuration section; each key mirrors a command-line flag (<c>Inference:Model</c> ↔ <c>--model</c>).</summary>
public sealed class InferenceOptions
{
    public const string Section = "Inference";

    /// <summary>Path of the model file or folder to serve.</summary>
    public string? Model { get; set; }

    /// <summary>The id clients name in <c>model</c>; defaults to the model file's name without extension.</summary>
    public string? ServedModelName { get; set; }

    public string ModelId => ServedModelName
        ?? (string.IsNullOrEmpty(Model) ? "stories15M" : Path.GetFileNameWithoutExtension(Model.TrimEnd('/', '\\')));
}
