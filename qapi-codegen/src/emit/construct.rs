//! How users build generated values: `Default`, `new` and `From`.
//!
//! One idiom for every generated type, chosen for what it costs the
//! compiler as much as for how it reads (the crate docs of `qapi-types`
//! explain it to users):
//!
//! - a type whose members are all optional derives `Default`;
//! - a type with required members gets `new(required…)`, its required
//!   members in schema order (strings as `impl Into<String>`, boxed members
//!   as `impl Into<Box<T>>`, so neither `.to_owned()` nor `Box::new` shows
//!   at the call site), every optional member `None`;
//! - optional members are then set with struct update syntax
//!   (`Eject { id: Some(..), ..Default::default() }`), which needs no
//!   generated code at all: no setter per member, which would add a
//!   function for each of the schema's optional members;
//! - a union converts `From` its branch enum when its base has no required
//!   member, and both the union and the branch enum convert `From` the type
//!   of any branch no other branch shares (boxing hidden inside);
//! - an alternate converts `From` each alternative's type;
//! - a command or event whose data is a named type converts `From` it.
//!
//! Every function is `#[inline]` or generic, so none is compiled unless a
//! program calls it.  Constructors allow `deprecated`: they set deprecated
//! members to `None` without the user's code naming them.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::{type_text, FieldSpec};

/// Whether a value can be built from no members at all.
pub(super) fn all_optional(specs: &[FieldSpec]) -> bool {
    specs.iter().all(|s| s.optional)
}

/// The derives of a struct with the members `specs`.
pub(super) fn derives(specs: &[FieldSpec]) -> TokenStream {
    if all_optional(specs) {
        quote! { #[derive(Debug, Clone, Default, PartialEq)] }
    } else {
        quote! { #[derive(Debug, Clone, PartialEq)] }
    }
}

/// A parameter of `new` for a required member, and the field initializer
/// that turns it into the member's value.
///
/// Members of a named type, a string or a list take `impl Into<T>`: a
/// `&str` for a string, an array for a list, any type the member's type
/// converts from (an alternate's alternatives, a union's branch types).  A
/// boxed member takes the unboxed type and boxes it.  Numbers, booleans and
/// `any` take their type as it is: `impl Into<u64>` would refuse a bare
/// integer literal (the compiler cannot pick among the types that convert).
fn parameter(spec: &FieldSpec) -> (TokenStream, TokenStream) {
    let FieldSpec { ident, ty, .. } = spec;
    let text = type_text(ty);
    let plain = matches!(
        text.as_str(),
        "i8" | "i16"
            | "i32"
            | "i64"
            | "u8"
            | "u16"
            | "u32"
            | "u64"
            | "f64"
            | "bool"
            | "()"
            | "::serde_json::Value"
    );
    if plain {
        return (quote! { #ident: #ty }, quote! { #ident });
    }
    match &spec.unboxed {
        Some(inner) => (
            quote! { #ident: impl ::std::convert::Into<#inner> },
            quote! { #ident: ::std::boxed::Box::new(#ident.into()) },
        ),
        None => (
            quote! { #ident: impl ::std::convert::Into<#ty> },
            quote! { #ident: #ident.into() },
        ),
    }
}

/// `new` for a type with required members (`specs` the members before
/// `branch`, when the type is a union with the branch enum `branch`), or
/// nothing when every member is optional.  `extra` is the map of further
/// members of an open-ended command.
pub(super) fn constructor(
    name: &Ident,
    specs: &[FieldSpec],
    branch: Option<&Ident>,
    extra: bool,
) -> TokenStream {
    if branch.is_none() && all_optional(specs) {
        return TokenStream::new();
    }
    let mut params = Vec::new();
    let mut inits = Vec::new();
    let mut required = Vec::new();
    for spec in specs {
        let ident = &spec.ident;
        if spec.optional {
            inits.push(quote! { #ident: ::std::option::Option::None, });
        } else {
            let (param, init) = parameter(spec);
            params.push(param);
            inits.push(quote! { #init, });
            required.push(format!("`{}`", spec.wire));
        }
    }
    if let Some(branch) = branch {
        params.push(quote! { branch: #branch });
        inits.push(quote! { branch, });
        required.push("the branch".to_owned());
    }
    if extra {
        inits.push(quote! { extra: ::serde_json::Map::new(), });
    }
    let optional = if specs.iter().any(|s| s.optional) {
        ", the optional ones `None`"
    } else {
        ""
    };
    let doc = format!(
        " Builds it from its required members ({}){optional}.",
        required.join(", ")
    );
    quote! {
        impl #name {
            #[doc = #doc]
            #[inline]
            #[allow(deprecated)]
            pub fn new(#( #params ),*) -> Self {
                Self { #( #inits )* }
            }
        }
    }
}

/// `From<T> for target`, building it with `build` from `value`.
pub(super) fn from(ty: &TokenStream, target: &Ident, build: TokenStream) -> TokenStream {
    quote! {
        impl ::std::convert::From<#ty> for #target {
            #[inline]
            fn from(value: #ty) -> Self {
                #build
            }
        }
    }
}

/// The conversions of a union `name` (base members `specs`) and its branch
/// enum `branch_name`: `From` the branch enum when no base member is
/// required, and `From` each branch type that only one branch has
/// (`variants`: the variant and its value type, `boxed` when the variant
/// holds a `Box` of it).
pub(super) fn union_conversions(
    name: &Ident,
    branch_name: &Ident,
    specs: &[FieldSpec],
    variants: &[(Ident, TokenStream, bool)],
) -> TokenStream {
    let mut out = Vec::new();
    let base_optional = all_optional(specs);
    if base_optional {
        out.push(from(
            &quote! { #branch_name },
            name,
            quote! { Self::new(value) },
        ));
    }
    for (variant, ty, boxed) in variants {
        let text = type_text(ty);
        let shared = variants
            .iter()
            .filter(|(_, other, _)| type_text(other) == text)
            .count()
            > 1;
        if shared {
            continue;
        }
        let value = if *boxed {
            quote! { ::std::boxed::Box::new(value) }
        } else {
            quote! { value }
        };
        out.push(from(ty, branch_name, quote! { Self::#variant(#value) }));
        if base_optional {
            out.push(from(
                ty,
                name,
                quote! { Self::new(#branch_name::#variant(#value)) },
            ));
        }
    }
    quote! { #( #out )* }
}

/// The conversions into the alternate `name` of its alternative `variant`
/// (holding `ty`, in a `Box` when `boxed`): `From` the type, and
/// `From<&str>` for the string alternative.  The null alternative gets
/// none: `From<()>` would say nothing a reader could guess.
pub(super) fn alternative_conversions(
    name: &Ident,
    variant: &Ident,
    ty: &TokenStream,
    boxed: bool,
) -> TokenStream {
    let text = type_text(ty);
    if text == "()" {
        return TokenStream::new();
    }
    if boxed {
        return from(
            ty,
            name,
            quote! { Self::#variant(::std::boxed::Box::new(value)) },
        );
    }
    let plain = from(ty, name, quote! { Self::#variant(value) });
    if text == "::std::string::String" {
        let borrowed = quote! {
            impl ::std::convert::From<&str> for #name {
                #[inline]
                fn from(value: &str) -> Self {
                    Self::#variant(::std::borrow::ToOwned::to_owned(value))
                }
            }
        };
        quote! { #plain #borrowed }
    } else {
        plain
    }
}
