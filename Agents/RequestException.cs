namespace AspireAi.Agents;

/// <summary>A request that cannot be served as sent: answered with <see cref="Status"/> and OpenAI's error object naming <see cref="Param"/>.</summary>
internal sealed class RequestException(int status, string message, string? param = null, string? code = null) : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public IResult ToResult() => OpenAiError.Result(Status, Message, Param, Code);

    public static RequestException BadRequest(string message, string? param = null) => new(400, message, param);

    public static RequestException NotFound(string message, string? param = null) => new(404, message, param, "not_found");
}
