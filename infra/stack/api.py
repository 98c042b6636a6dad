"""The REST API: one method per route of the route table, a REQUEST authorizer, access logs,
stage throttling and gateway responses rewritten into the error envelope of API.md.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from policyhub.api.routes import ROUTES, Route

from .config import StackConfig
from .functions import retention_days
from .nag import acknowledge

ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTimeEpoch",
    "ip": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "path": "$context.path",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integration.latency",
    "integrationStatus": "$context.integration.status",
    "principalId": "$context.authorizer.principalId",
    "authorizerLatency": "$context.authorizer.latency",
    "errorType": "$context.error.responseType",
    "errorMessage": "$context.error.message",
    "xrayTraceId": "$context.xrayTraceId",
}


def envelope(code: str, message: str | None) -> str:
    """The API.md error body as a mapping template. `message=None` uses API Gateway's own
    message (`$context.error.messageString` is already a quoted JSON string)."""
    text = json.dumps(message) if message is not None else "$context.error.messageString"
    return (
        '{"error": {"code": "' + code + '", "message": ' + text
        + ', "request_id": "$context.requestId", "details": []}}'
    )


# (response type, status override, error code, message or None for API Gateway's message)
GATEWAY_RESPONSES: tuple[tuple[apigw.ResponseType, str | None, str, str | None], ...] = (
    (apigw.ResponseType.UNAUTHORIZED, "401", "unauthorized",
     "Missing, unknown or revoked API key."),
    (apigw.ResponseType.ACCESS_DENIED, "403", "forbidden",
     "This API key may not call this endpoint."),
    (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "404", "not_found",
     "No such endpoint; see GET /v1/openapi.json."),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "payload_too_large",
     "The request body is too large."),
    (apigw.ResponseType.THROTTLED, "429", "throttled",
     "Too many requests; retry with exponential backoff."),
    # The authorizer could not decide (e.g. a throttled key lookup): retryable, not a bad key.
    (apigw.ResponseType.AUTHORIZER_FAILURE, "503", "service_unavailable",
     "Could not check the API key right now; retry with backoff."),
    (apigw.ResponseType.AUTHORIZER_CONFIGURATION_ERROR, "503", "service_unavailable",
     "Could not check the API key right now; retry with backoff."),
    (apigw.ResponseType.DEFAULT_4_XX, None, "bad_request", None),
    (apigw.ResponseType.DEFAULT_5_XX, None, "internal_error", "Internal error."),
)


class PolicyApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        functions: dict[str, lambda_.Function],
        authorizer_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention_days(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"policyhub-{config.stage_name}",
            description="policyhub HTTP API v1",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Execution logging (ERROR level) needs the account-level CloudWatch role.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=config.stage_name,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
            ),
        )
        self.authorizer = apigw.RequestAuthorizer(
            self,
            "KeyAuthorizer",
            handler=authorizer_function,
            identity_sources=[apigw.IdentitySource.header("Authorization")],
            results_cache_ttl=Duration.seconds(config.authorizer_cache_seconds),
        )
        self.parameter_validator = self.api.add_request_validator(
            "ParameterValidator", validate_request_parameters=True, validate_request_body=False
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG2",
            "Parameters are validated at the gateway (ParameterValidator); bodies are validated "
            "in the Lambda (pydantic), because API.md promises 422 with field details for a "
            "schema violation, which a gateway model cannot produce (decision 052).",
        )
        self.methods: dict[str, apigw.Method] = {
            route.name: self._method(route, functions[route.name]) for route in ROUTES
        }
        for response_type, status, code, message in GATEWAY_RESPONSES:
            self.api.add_gateway_response(
                f"{response_type.response_type}Response",
                type=response_type,
                status_code=status,
                templates={"application/json": envelope(code, message)},
            )
        self._security(config)
        self.url = self.api.url

    def _method(self, route: Route, fn: lambda_.IFunction) -> apigw.Method:
        resource = self.api.root.resource_for_path(route.path)
        params = {f"method.request.path.{name}": True for name in route.path_params}
        method = resource.add_method(
            route.method,
            # allow_test_invoke=False: one invoke permission per method, not two.
            apigw.LambdaIntegration(fn, proxy=True, allow_test_invoke=False),
            authorizer=self.authorizer if route.auth else None,
            authorization_type=(
                apigw.AuthorizationType.CUSTOM if route.auth else apigw.AuthorizationType.NONE
            ),
            request_parameters=params or None,
            request_validator=self.parameter_validator if params else None,
            operation_name=route.name,
        )
        if not route.auth:
            acknowledge(
                method,
                "AwsSolutions-APIG4",
                f"{route.method} {route.path} is public by contract (API.md: no auth).",
            )
            acknowledge(
                method,
                "AwsSolutions-COG4",
                f"{route.method} {route.path} is public by contract (API.md: no auth).",
            )
        else:
            acknowledge(
                method,
                "AwsSolutions-COG4",
                "Callers are platform services holding tenant API keys (API.md), checked by the "
                "Lambda REQUEST authorizer; there are no end users to put in a Cognito pool.",
            )
        return method

    def _security(self, config: StackConfig) -> None:
        stage = self.api.deployment_stage
        if config.web_acl_arn:
            wafv2.CfnWebACLAssociation(
                self, "WebAcl", resource_arn=stage.stage_arn, web_acl_arn=config.web_acl_arn
            )
        else:
            acknowledge(
                stage,
                "AwsSolutions-APIG3",
                "WAF is opt-in (context policyhub:webAclArn) because web ACLs are usually shared "
                "per account; without it stage throttling and key auth bound abuse.",
            )
        cw_role = self.api.node.try_find_child("CloudWatchRole")
        if cw_role is not None:
            acknowledge(
                cw_role,
                "AwsSolutions-IAM4",
                "API Gateway's account-level logging role must carry the AWS managed "
                "AmazonAPIGatewayPushToCloudWatchLogs policy; it is used by API Gateway only.",
                finding="Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs",
            )
