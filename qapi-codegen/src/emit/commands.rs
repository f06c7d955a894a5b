//! Commands: the arguments type and its `Command` implementation.

use proc_macro2::TokenStream;
use quote::quote;

use super::*;
use crate::model::{EntityId, EntityKind};

impl Emitter<'_> {
    pub(super) fn command(&mut self, id: EntityId) -> Result<TokenStream, GenerateError> {
        let entity = self.schema.entity(id);
        let EntityKind::Command(cmd) = &entity.kind else {
            unreachable!("a command");
        };
        let cmd = cmd.clone();
        let rust = names::camel(&entity.name);
        // A command whose arguments are a named type of the same Rust name
        // (`drive-backup` takes `DriveBackup`) is that type: it implements
        // `Command` itself.
        let same_named = cmd.arg_type.filter(|&a| {
            !self.schema.name(a).starts_with("q_obj_")
                && names::type_name(self.schema.name(a)) == rust
        });
        let data = if let Some(arg) = same_named {
            self.uses(arg);
            TokenStream::new()
        } else {
            self.claim(&rust, &entity.name, "commands")?;
            let docs = doc_attrs(&self.item_docs(id));
            let deprecated = self.deprecated(&entity.features, self.deprecation_text(id));
            self.data_type(id, &rust, cmd.arg_type, !cmd.gen, docs, deprecated)?
        };
        let name_path = {
            let name = ident(&rust);
            quote! { #name }
        };
        let data = match same_named {
            Some(_) => {
                let name = ident(&rust);
                let prefix = &self.prefix;
                quote! { pub use #prefix #name; }
            }
            None => data,
        };
        let wire = &entity.name;
        let core = self.core.clone();
        {
            let module = names::module(&self.schema.modules[self.current_module].name);
            self.codec_arms.push(CodecArm {
                module,
                wire: wire.clone(),
                rust: rust.clone(),
            });
        }
        let returns = match cmd.ret_type {
            Some(r) => self.type_ref(r),
            None => quote! { #core::Empty },
        };
        let mut consts = Vec::new();
        if cmd.allow_oob {
            consts.push(quote! { const ALLOW_OOB: bool = true; });
        }
        if !cmd.success_response {
            consts.push(quote! { const SUCCESS_RESPONSE: bool = false; });
        }
        if cmd.allow_preconfig {
            consts.push(quote! { const ALLOW_PRECONFIG: bool = true; });
        }
        if entity.features.iter().any(|f| f.name == "deprecated") {
            consts.push(quote! { const DEPRECATED: bool = true; });
        }
        if entity.features.iter().any(|f| f.name == "unstable") {
            consts.push(quote! { const UNSTABLE: bool = true; });
        }
        if cmd.arg_type.is_none() && cmd.gen {
            consts.push(quote! { const HAS_ARGUMENTS: bool = false; });
        }
        let marker = match self.options.protocol {
            Protocol::Qmp => quote! { #core::QmpCommand },
            Protocol::GuestAgent => quote! { #core::QgaCommand },
        };
        let name_doc = format!(" `{wire}`");
        Ok(quote! {
            #data

            impl #core::Command for #name_path {
                #[doc = #name_doc]
                const NAME: &'static str = #wire;
                type Returns = #returns;
                #( #consts )*
            }

            impl #marker for #name_path {}
        })
    }
}
