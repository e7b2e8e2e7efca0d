//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and the
//! response types' `ToSchema` derives, so it cannot drift from the code.

use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::handlers::{accounts, ops, users};
use crate::model;

#[derive(OpenApi)]
#[openapi(
    info(title = "finstream query API", description = "Read-only interactive queries over finstream's committed state. \
        Amounts are decimal strings with 4 places; instants are RFC 3339 (UTC); errors are {\"error\", \"message\"}."),
    paths(
        accounts::balance, accounts::lineage, accounts::fraud_scores, accounts::fraud_score,
        users::budgets, users::goals, users::spending, users::cash_flow,
        ops::health, ops::ready, ops::metrics, ops::openapi_json,
    ),
    components(schemas(
        ErrorBody, model::Balance, model::Lineage, model::LineageLeg, model::FraudScores, model::FraudScoreItem,
        model::Budgets, model::BudgetStatus, model::Goals, model::Goal, model::Spending, model::SpendingDay,
        model::CashFlow, model::Health,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Declares the bearer-JWT scheme the `security` requirement names.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}
