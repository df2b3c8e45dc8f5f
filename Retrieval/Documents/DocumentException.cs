namespace AspireAi.Retrieval.Documents;

/// <summary>A document the service cannot take, with the HTTP status and the request field it concerns.</summary>
internal sealed class DocumentException(int status, string message, string? param = null) : Exception(message)
{
    public int Status { get; } = status;

    public string? Param { get; } = param;

    public IResult ToResult() => OpenAiError.Result(Status, Message, Param);
}
