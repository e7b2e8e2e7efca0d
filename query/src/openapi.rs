//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and the
//! response types' `ToSchema` derives, so it cannot drift from the code; [`document`] adds the
//! stores the running topology serves on `/v1/stores`, which only it knows.

use utoipa::OpenApi;

use crate::catalog::Catalog;
use crate::error::ErrorBody;
use crate::handlers::{accounts, ops, stores, users};
use crate::model;

#[derive(OpenApi)]
#[openapi(
    info(title = "finstream query API", description = "Read-only interactive queries over finstream's committed state. \
        Amounts are decimal strings with 4 places; instants are RFC 3339 (UTC); errors are {\"error\", \"message\"}."),
    paths(
        accounts::balance, accounts::lineage, accounts::fraud_scores, accounts::fraud_score,
        users::budgets, users::goals, users::spending, users::cash_flow,
        stores::list, stores::lookup, stores::scan,
        ops::health, ops::ready, ops::metrics, ops::openapi_json,
    ),
    components(schemas(
        ErrorBody, model::Balance, model::Lineage, model::LineageLeg, model::FraudScores, model::FraudScoreItem,
        model::Budgets, model::BudgetStatus, model::Goals, model::Goal, model::Spending, model::SpendingDay,
        model::CashFlow, model::Health, model::StoreList, model::StoreInfo, model::StoreEntries, model::StoreEntry,
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

/// [`ApiDoc`] with the `store` parameter of the generic endpoints restricted to the names in
/// `stores`, each described (layout, who may read it).
pub fn document(stores: &Catalog) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let mut doc = ApiDoc::openapi();
    if stores.is_empty() {
        return doc;
    }
    let names: Vec<String> = stores.iter().map(|s| s.name().to_string()).collect();
    let listing: Vec<String> = stores
        .iter()
        .map(|s| {
            let access = match s.access() {
                streams::store::query::Access::AdminOnly => "administrators only",
                streams::store::query::Access::PerOwner => "users read their own entries",
            };
            let everywhere = if s.everywhere() { ", global" } else { "" };
            format!("`{}` ({:?}{everywhere}; {access})", s.name(), s.layout())
        })
        .collect();
    let schema = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names)).build();
    for path in ["/v1/stores/{store}", "/v1/stores/{store}/keys/{key}"] {
        let Some(op) = doc.paths.paths.get_mut(path).and_then(|p| p.get.as_mut()) else { continue };
        for param in op.parameters.iter_mut().flatten().filter(|p| p.name == "store") {
            param.schema = Some(schema.clone().into());
            param.description = Some(format!("One of: {}", listing.join(", ")));
        }
    }
    doc
}
