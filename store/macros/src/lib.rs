//! `#[engines]`: makes an `impl … for SqlStore<DB>` block of `fleet_store::sql` generic over both
//! engines, with the trait bounds its SQL needs written once, here.
//!
//! Why a macro: the shared store is one generic `SqlStore<DB: Dialect>`, and its SQL binds and
//! reads Rust values (`String`, `i64`, `Ts`, …) that must each be `Encode`/`Decode`/`Type` for
//! `DB`. Those are bounds on the value types, not on `DB`, and Rust does not carry such bounds
//! from a trait's definition to its users (only supertraits of `Self` are implied), so without
//! this every impl block of every area repeated the same fifteen lines — and a new bound type
//! meant editing all of them. No crate offers this (it is specific to our list); it is an
//! attribute rather than a `macro_rules!` wrapper so that rustfmt still formats the block.
//!
//! Use: `#[engines] impl Trait for SqlStore<DB> { … }` (or an inherent `impl SqlStore<DB>`),
//! above `#[async_trait]` when there is one. The block gets `<DB>` and the `where` clause of
//! `bounds()`; anything it already says is kept. A block that needs a bound not in the list fails
//! to compile with the missing bound named; add it to the list.

use proc_macro::TokenStream;
use quote::quote;
use syn::{ItemImpl, WherePredicate, parse_macro_input, parse_quote};

/// The bounds of every shared impl block: `DB` is an engine, and the values the shared SQL binds
/// and decodes work on it.
fn bounds() -> Vec<WherePredicate> {
    vec![
        parse_quote!(DB: crate::sql::Dialect),
        parse_quote!(for<'c> &'c mut DB::Connection: ::sqlx::Executor<'c, Database = DB>),
        parse_quote!(for<'r> &'r str: ::sqlx::Encode<'r, DB> + ::sqlx::Type<DB> + ::sqlx::ColumnIndex<DB::Row>),
        parse_quote!(for<'r> String: ::sqlx::Encode<'r, DB> + ::sqlx::Decode<'r, DB> + ::sqlx::Type<DB>),
        parse_quote!(for<'r> Option<String>: ::sqlx::Encode<'r, DB>),
        parse_quote!(for<'r> i64: ::sqlx::Encode<'r, DB> + ::sqlx::Decode<'r, DB> + ::sqlx::Type<DB>),
        parse_quote!(for<'r> Option<i64>: ::sqlx::Encode<'r, DB>),
        parse_quote!(for<'r> i32: ::sqlx::Decode<'r, DB> + ::sqlx::Type<DB>),
        parse_quote!(for<'r> bool: ::sqlx::Encode<'r, DB> + ::sqlx::Decode<'r, DB> + ::sqlx::Type<DB>),
        parse_quote!(for<'r> Vec<u8>: ::sqlx::Encode<'r, DB> + ::sqlx::Decode<'r, DB> + ::sqlx::Type<DB>),
        parse_quote!(for<'r> crate::sql::Ts: ::sqlx::Encode<'r, DB> + ::sqlx::Decode<'r, DB> + ::sqlx::Type<DB>),
        parse_quote!(for<'r> Option<crate::sql::Ts>: ::sqlx::Encode<'r, DB>),
        parse_quote!(for<'r> crate::sql::OptTs: ::sqlx::Decode<'r, DB> + ::sqlx::Type<DB>),
        parse_quote!(for<'r> crate::sql::time::QueueTs: ::sqlx::Encode<'r, DB> + ::sqlx::Type<DB>),
        parse_quote!(for<'r> crate::sql::time::OptQueueTs: ::sqlx::Decode<'r, DB> + ::sqlx::Type<DB>),
        parse_quote!(for<'r> ::sqlx::types::Json<::serde_json::Value>: ::sqlx::Encode<'r, DB> + ::sqlx::Type<DB>),
        parse_quote!(usize: ::sqlx::ColumnIndex<DB::Row>),
    ]
}

/// See the crate header.
#[proc_macro_attribute]
pub fn engines(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let message = "#[engines] takes no arguments";
        return syn::Error::new(proc_macro2::Span::call_site(), message).to_compile_error().into();
    }
    let mut block = parse_macro_input!(item as ItemImpl);
    block.generics.params.insert(0, parse_quote!(DB));
    let clause = block.generics.make_where_clause();
    for bound in bounds() {
        clause.predicates.push(bound);
    }
    quote!(#block).into()
}
