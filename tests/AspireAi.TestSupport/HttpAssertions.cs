using System.Net;
using System.Text.Json;

namespace AspireAi.TestSupport;

/// <summary>Assertions on HTTP answers, so that tests read as requests and answers.</summary>
public static class HttpAssertions
{
    /// <summary>Asserts <paramref name="expected"/> (showing the body when it is not) and returns the JSON body.</summary>
    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response, HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"Expected {(int)expected}, got {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>Asserts an OpenAI-shaped error with <paramref name="status"/> (and <paramref name="param"/>); returns the error object.</summary>
    public static async Task<JsonElement> ErrorAsync(this HttpResponseMessage response, HttpStatusCode status, string? param = null)
    {
        var error = (await response.JsonAsync(status)).GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("type").GetString()));
        if (param is not null)
        {
            Assert.Equal(param, error.GetProperty("param").GetString());
        }

        return error;
    }
}
