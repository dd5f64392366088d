//! Order lines and the catalog: a line naming a product's SKU is a
//! snapshot of that product; other lines are free text, where the tenant
//! allows them.

use std::collections::HashMap;

use ordo_domain::order::LineText;
use ordo_domain::{Currency, FieldError, FieldErrors, LineDraft, Product, Sku, TenantId};
use ordo_store::Store;

use crate::api::error::ApiError;

/// The catalog products a request's lines name, read once per request.
#[derive(Debug, Default)]
pub struct Catalog {
    products: HashMap<Sku, Product>,
    /// Whether lines not taken from the catalog are accepted.
    free_text: bool,
}

impl Catalog {
    /// Reads the products of `skus`.
    pub async fn read(
        store: &dyn Store,
        tenant: TenantId,
        mut skus: Vec<Sku>,
        free_text: bool,
    ) -> Result<Catalog, ApiError> {
        skus.sort_unstable();
        skus.dedup();
        let products = if skus.is_empty() {
            HashMap::new()
        } else {
            store
                .products_by_sku(tenant, &skus)
                .await?
                .into_iter()
                .map(|p| (p.sku.clone(), p))
                .collect()
        };
        Ok(Catalog {
            products,
            free_text,
        })
    }

    /// The products read.
    pub fn products(&self) -> Vec<Product> {
        self.products.values().cloned().collect()
    }

    /// A catalog without products: every line is free text, if allowed.
    pub fn empty(free_text: bool) -> Catalog {
        Catalog {
            products: HashMap::new(),
            free_text,
        }
    }

    /// Checks one line: a snapshot of its product if its SKU names one,
    /// free text otherwise (if allowed). Field names are relative to the line.
    pub fn line(&self, text: LineText<'_>, currency: Currency) -> Result<LineDraft, FieldErrors> {
        let product = text
            .sku
            .and_then(|s| Sku::parse(s).ok())
            .and_then(|sku| self.products.get(&sku));
        if let Some(product) = product {
            return LineDraft::from_product(text, product, currency);
        }
        let unknown_sku = |reason: &str, accepted: &str| -> FieldErrors {
            FieldError::new("sku", reason)
                .value(text.sku.unwrap_or_default())
                .accepted(accepted)
                .into()
        };
        match text.sku {
            // A malformed SKU is reported as such by the free-text checks.
            Some(sku) if Sku::parse(sku).is_ok() => {
                if !self.free_text {
                    return Err(unknown_sku(
                        "no product has this SKU",
                        "the SKU of a product in the catalog",
                    ));
                }
                if text.name.is_none() || text.unit_price.is_none() {
                    return Err(unknown_sku(
                        "no product has this SKU",
                        "the SKU of a product in the catalog, or a name and a unit_price for an item not in it",
                    ));
                }
            }
            None if !self.free_text => {
                return Err(FieldError::new(
                    "sku",
                    "this shop sells only from its catalog: every item needs a SKU",
                )
                .accepted("the SKU of a product in the catalog")
                .into())
            }
            _ => {}
        }
        LineDraft::parse(text, currency)
    }
}
