using Microsoft.Extensions.DependencyInjection;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace AspireAi.IntegrationTests;

/// <summary>The whole system in local mode: every resource healthy, every service's health, one request end to end.</summary>
[Collection(LocalAppHostCollection.Name)]
public sealed class LocalModeTests(LocalAppHostFixture fixture)
{
    [Theory]
    [InlineData("inference-0")]
    [InlineData("inference-1")]
    [InlineData("retrieval")]
    [InlineData("agents")]
    [InlineData("gateway")]
    public async Task Every_service_reports_healthy(string service)
    {
        using var client = fixture.App.CreateHttpClient(service);
        using var response = await client.GetAsync("/health", TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{service} /health: {(int)response.StatusCode} {body}");
        Assert.Equal("Healthy", JsonDocument.Parse(body).RootElement.GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_request_through_the_gateway_reaches_inference_and_comes_back()
    {
        using var client = fixture.CreateGatewayClient();
        using var response = await client.GetAsync("/v1/models", TestContext.Current.CancellationToken);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("list", body.GetProperty("object").GetString());
        Assert.Contains(body.GetProperty("data").EnumerateArray(), m => m.GetProperty("object").GetString() == "model");
    }

    [Fact]
    public async Task A_chat_completion_through_the_gateway_is_generated_by_the_inference_engine()
    {
        using var client = fixture.CreateGatewayClient();
        var ct = TestContext.Current.CancellationToken;
        var models = JsonDocument.Parse(await client.GetStringAsync("/v1/models", ct)).RootElement.GetProperty("data");
        var model = models.EnumerateArray().Select(m => m.GetProperty("id").GetString()).First(id => id!.StartsWith("stories15M"));

        using var response = await client.PostAsJsonAsync("/v1/chat/completions", new
        {
            model,
            messages = new[] { new { role = "user", content = "Once upon a time" } },
            max_tokens = 12,
            temperature = 0,
        }, ct);
        var body = await response.Content.ReadAsStringAsync(ct);

        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var completion = JsonDocument.Parse(body).RootElement;
        Assert.Equal("chat.completion", completion.GetProperty("object").GetString());
        Assert.False(string.IsNullOrWhiteSpace(completion.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()));
        Assert.InRange(completion.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), 1, 12);
    }

    [Theory]
    [InlineData("/v1/collections")]
    [InlineData("/v1/agents")]
    public async Task The_gateway_routes_to_services_that_read_their_own_database(string path)
    {
        using var client = fixture.CreateGatewayClient();
        using var response = await client.GetAsync(path, TestContext.Current.CancellationToken);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(JsonValueKind.Array, body.GetProperty("data").ValueKind);
    }

    [Fact]
    public async Task The_gateway_refuses_a_request_without_a_key_in_the_OpenAI_error_shape()
    {
        using var client = fixture.CreateGatewayClient(authenticated: false);
        using var response = await client.GetAsync("/v1/models", TestContext.Current.CancellationToken);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken))
            .RootElement.GetProperty("error");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("authentication_error", error.GetProperty("type").GetString());
        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Only_the_gateway_has_an_external_endpoint()
    {
        var model = fixture.App.Services.GetRequiredService<Aspire.Hosting.ApplicationModel.DistributedApplicationModel>();
        var external = model.Resources
            .Where(r => r.Annotations.OfType<Aspire.Hosting.ApplicationModel.EndpointAnnotation>().Any(e => e.IsExternal))
            .Select(r => r.Name);

        Assert.Equal(["gateway"], external);
        await Task.CompletedTask;
    }
}
