//! Order lines and the catalog: a line naming a product's SKU is a
//! snapshot of that product; other lines are free text, where the tenant
//! allows them.

use std::collections::{BTreeMap, HashMap};

use ordo_domain::order::LineText;
use ordo_domain::{Currency, FieldError, FieldErrors, LineDraft, Product, Shortage, Sku, TenantId};
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

    /// The part of the catalog `skus` name (one order's, of the products
    /// read for many).
    pub fn part(&self, skus: &[Sku]) -> Catalog {
        Catalog {
            products: skus
                .iter()
                .filter_map(|sku| Some((sku.clone(), self.products.get(sku)?.clone())))
                .collect(),
            free_text: self.free_text,
        }
    }

    /// The products read.
    pub fn products(&self) -> Vec<Product> {
        self.products.values().cloned().collect()
    }

    /// The product of `sku`, if the catalog has it.
    pub fn product(&self, sku: &Sku) -> Option<&Product> {
        self.products.get(sku)
    }

    /// The SKUs of `lines` with fewer units available now than the lines
    /// ask for (none are reserved: this is what a storefront refuses to
    /// sell; only a reservation keeps the units).
    pub fn shortages(&self, lines: &[LineDraft]) -> Vec<Shortage> {
        let mut wanted: BTreeMap<&Sku, (usize, i64)> = BTreeMap::new();
        for (i, line) in lines.iter().enumerate() {
            if let Some(sku) = &line.sku {
                wanted.entry(sku).or_insert((i, 0)).1 += i64::from(line.quantity);
            }
        }
        wanted
            .into_iter()
            .filter_map(|(sku, (line, requested))| {
                let p = self.products.get(sku).filter(|p| p.track_stock)?;
                (p.available() < requested).then(|| Shortage {
                    sku: sku.clone(),
                    line,
                    requested,
                    available: p.available(),
                })
            })
            .collect()
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
        self.refuse_free_text(&text)?;
        LineDraft::parse(text, currency)
    }

    /// What rules out a line that names no product, before its free-text
    /// fields are checked: an unknown SKU without a name and a price, and
    /// without free text any such line at all.
    pub fn refuse_free_text(&self, text: &LineText<'_>) -> Result<(), FieldErrors> {
        let unknown_sku = |accepted: &str| -> FieldErrors {
            FieldError::new("sku", "no product has this SKU")
                .value(text.sku.unwrap_or_default())
                .accepted(accepted)
                .into()
        };
        match text.sku {
            // A malformed SKU is reported as such by the free-text checks.
            Some(sku) if Sku::parse(sku).is_ok() => {
                if !self.free_text {
                    return Err(unknown_sku("the SKU of a product in the catalog"));
                }
                if text.name.is_none() || text.unit_price.is_none() {
                    return Err(unknown_sku(
                        "the SKU of a product in the catalog, or a name and a unit_price for an item not in it",
                    ));
                }
            }
            // Only a malformed SKU gets here: without free text, that is all
            // there is to say about the line.
            Some(sku) if !self.free_text => {
                ordo_domain::product::parse_sku("sku", sku)?;
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
        Ok(())
    }
}
