using AspireAi.Gateway.Auth;
using AspireAi.Gateway.Routing;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.AddRedisClient("redis");
builder.AddNpgsqlDataSource("gatewaydb");

builder.Services.AddGatewayAuthentication(builder.Configuration);
builder.Services.AddGatewayProxy();

var app = builder.Build();
app.UseOpenAiErrors();
app.UseAuthentication();
app.UseAuthorization();
app.MapDefaultEndpoints();
app.MapGatewayProxy();
app.Run();
